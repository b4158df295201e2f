// The app of the jar test (JarIT): started with only the jar and its runtime dependencies on the
// classpath, no tinybase.library.path, TINYBASE_LIBRARY or jna.library.path, from an empty folder
// (java's source-file mode compiles it there). It must find libtinybase.so inside the jar.
// Written in Java: it also shows the API as Java callers see it.

import com.sun.jna.NativeLibrary;
import org.tinybase.LibKt;
import org.tinybase.MergeableStore;

public class JarApp {
    public static void main(String[] args) throws Exception {
        try (MergeableStore store = new MergeableStore("jar-app")) {
            store.setCell("pets", "fido", "species", "dog");
            System.out.println("cell " + store.getCell("pets", "fido", "species"));
            System.out.println("version " + LibKt.version());
            System.out.println("library " + NativeLibrary.getInstance("tinybase").getFile());
        }
    }
}
