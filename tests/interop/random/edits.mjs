// The random edits of the interop suites, shared by the TinyBase peers (tb_peer.mjs here and
// ../ws/tb_client.mjs): a seeded splitmix64 (as random_peer.rs) and the op mix over 3 tables ×
// 40 rows × 8 cells and 8 values.

// splitmix64 over BigInt, as random_peer.rs: `below(n)` is the next number in 0..n.
const MASK = (1n << 64n) - 1n;
export const rngFrom = (seed) => {
  let s = BigInt(seed) & MASK;
  const next = () => {
    s = (s + 0x9e3779b97f4a7c15n) & MASK;
    let z = s;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK;
    return z ^ (z >> 31n);
  };
  return (n) => Number(next() % BigInt(n));
};

// One random edit of `store` (not yet applied): a function to call, inside a transaction or not.
// `tag` makes the string values of a writer its own.
export const randomOp = (store, below, tag) => {
  const table = `t${below(3)}`;
  const row = `r${below(40)}`;
  const cell = `c${below(8)}`;
  const kind = below(3);
  const value = kind === 0 ? below(100) : kind === 1 ? `${tag}${below(100)}` : below(2) === 0;
  const p = below(100);
  if (p < 60) return () => store.setCell(table, row, cell, value);
  if (p < 72) return () => store.delCell(table, row, cell);
  if (p < 75) return () => store.delRow(table, row);
  if (p < 92) return () => store.setValue(`v${below(8)}`, value);
  return () => store.delValue(`v${below(8)}`);
};
