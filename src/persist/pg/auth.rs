//! Password authentication: the `md5` response and the SCRAM-SHA-256 exchange (RFC 5802 with
//! SHA-256, RFC 7677), as PostgreSQL uses them. Hashing is ring's, already linked for rustls.

use super::{base64, md5::md5_hex, Error};
use ring::{digest, hmac, pbkdf2, rand::SecureRandom};
use std::num::NonZeroU32;

/// The mechanism this client speaks (not `SCRAM-SHA-256-PLUS`: there is no TLS to bind to).
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";

/// The response to `AuthenticationMD5Password`: `"md5" || hex(md5(hex(md5(password || user)) || salt))`.
pub fn md5_password(user: &str, password: &[u8], salt: [u8; 4]) -> String {
    let mut inner = password.to_vec();
    inner.extend_from_slice(user.as_bytes());
    let mut outer = md5_hex(&inner).into_bytes();
    outer.extend_from_slice(&salt);
    format!("md5{}", md5_hex(&outer))
}

/// A SCRAM-SHA-256 exchange from the client's side: [`client_first`](Scram::client_first), then
/// [`client_final`](Scram::client_final) for the server's first message, then
/// [`verify_server_final`](Scram::verify_server_final), which proves the server knew the password.
pub struct Scram {
    password: Vec<u8>,
    client_first_bare: String,
    nonce: String,
    /// After `client_final`: the server key and the auth message its signature covers.
    expected: Option<(hmac::Key, String)>,
}

/// GS2 header "n,,": no channel binding, no authorization identity.
const GS2_HEADER: &str = "n,,";

/// The most PBKDF2 iterations a server may ask for (PostgreSQL's default is 4,096): a few
/// seconds of work. A server asking for billions would pin the connecting thread for hours.
pub const MAX_SCRAM_ITERATIONS: u32 = 10_000_000;

impl Drop for Scram {
    fn drop(&mut self) {
        // The password does not outlive the exchange in this process's freed memory.
        for b in self.password.iter_mut() {
            // SAFETY: `b` is a valid, exclusive reference; volatile so the writes are kept.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

impl Scram {
    /// A new exchange with a random nonce. PostgreSQL ignores SCRAM's user name (it takes the
    /// startup message's), so it is sent empty, as libpq does.
    pub fn new(password: &[u8]) -> Result<Scram, Error> {
        let mut raw = [0u8; 18];
        ring::rand::SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| Error::Auth("no random numbers for the SCRAM nonce".into()))?;
        Ok(Scram::with_nonce("", password, &base64::encode(&raw)))
    }

    /// An exchange with a given user name and nonce (printable ASCII without `,`): for tests
    /// against published exchanges.
    pub fn with_nonce(user: &str, password: &[u8], nonce: &str) -> Scram {
        // RFC 5802 5.1: ',' and '=' in the name are escaped as =2C and =3D.
        let user = user.replace('=', "=3D").replace(',', "=2C");
        Scram { password: password.to_vec(), client_first_bare: format!("n={user},r={nonce}"), nonce: nonce.into(), expected: None }
    }

    /// The client-first message.
    pub fn client_first(&self) -> String {
        format!("{GS2_HEADER}{}", self.client_first_bare)
    }

    /// The client-final message (with the proof) answering the server-first message.
    pub fn client_final(&mut self, server_first: &str) -> Result<String, Error> {
        let bad = |why: &str| Error::Auth(format!("invalid SCRAM server-first message ({why})"));
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for attribute in server_first.split(',') {
            match attribute.split_at_checked(2) {
                Some(("r=", v)) => nonce = Some(v),
                Some(("s=", v)) => salt = Some(base64::decode(v).ok_or_else(|| bad("salt is not base64"))?),
                Some(("i=", v)) => iterations = Some(v.parse::<NonZeroU32>().map_err(|_| bad("bad iteration count"))?),
                Some(("m=", _)) => return Err(bad("unsupported mandatory extension")),
                _ => {}
            }
        }
        let nonce = nonce.ok_or_else(|| bad("no nonce"))?;
        let salt = salt.ok_or_else(|| bad("no salt"))?;
        let iterations = iterations.ok_or_else(|| bad("no iteration count"))?;
        if iterations.get() > MAX_SCRAM_ITERATIONS {
            return Err(bad(&format!("{iterations} iterations asked for, more than the {MAX_SCRAM_ITERATIONS} this client computes")));
        }
        // The server's nonce extends ours: anything else is a replay or a confused server.
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(bad("the nonce does not extend the client's"));
        }
        let mut salted = [0u8; 32];
        pbkdf2::derive(pbkdf2::PBKDF2_HMAC_SHA256, iterations, &salt, &self.password, &mut salted);
        let salted = hmac::Key::new(hmac::HMAC_SHA256, &salted);
        let client_key = hmac::sign(&salted, b"Client Key");
        let stored_key = digest::digest(&digest::SHA256, client_key.as_ref());
        let without_proof = format!("c={},r={nonce}", base64::encode(GS2_HEADER.as_bytes()));
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, stored_key.as_ref()), auth_message.as_bytes());
        let proof: Vec<u8> = client_key.as_ref().iter().zip(signature.as_ref()).map(|(k, s)| k ^ s).collect();
        let server_key = hmac::sign(&salted, b"Server Key");
        self.expected = Some((hmac::Key::new(hmac::HMAC_SHA256, server_key.as_ref()), auth_message));
        Ok(format!("{without_proof},p={}", base64::encode(&proof)))
    }

    /// Checks the server-final message: its signature proves the server holds the password's
    /// verifier; an `e=` attribute is the server refusing.
    pub fn verify_server_final(&self, server_final: &str) -> Result<(), Error> {
        let (server_key, auth_message) =
            self.expected.as_ref().ok_or_else(|| Error::Auth("SCRAM server-final message before client-final".into()))?;
        if let Some(error) = server_final.strip_prefix("e=") {
            return Err(Error::Auth(format!("the server refused SCRAM authentication: {error}")));
        }
        let signature = server_final
            .split(',')
            .find_map(|a| a.strip_prefix("v="))
            .and_then(base64::decode)
            .ok_or_else(|| Error::Auth("invalid SCRAM server-final message".into()))?;
        hmac::verify(server_key, auth_message.as_bytes(), &signature)
            .map_err(|_| Error::Auth("the server's SCRAM signature does not verify (it does not know the password)".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7677_example_exchange() {
        let mut scram = Scram::with_nonce("user", b"pencil", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(scram.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        assert_eq!(
            scram.client_final(server_first).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        scram.verify_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=").unwrap();
        assert!(scram.verify_server_final("v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=").is_err());
        assert!(scram.verify_server_final("e=invalid-proof").is_err());
    }

    #[test]
    fn a_bad_server_first_message_is_refused() {
        for server_first in [
            "r=someoneelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "r=abc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "r=abcdef,s=!!,i=4096",
            "r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",
            "r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=10000001",
            "r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4294967295",
            "r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999999",
            "r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==",
            "garbage",
        ] {
            assert!(Scram::with_nonce("", b"pw", "abc").client_final(server_first).is_err(), "{server_first}");
        }
    }

    #[test]
    fn md5_response() {
        // Python: "md5" + md5(md5(b"secrettb").hexdigest().encode() + bytes([1, 2, 3, 4])).hexdigest()
        assert_eq!(md5_password("tb", b"secret", [1, 2, 3, 4]), "md508e2697fa23ae8b48a3395bc46cfe319");
    }
}
