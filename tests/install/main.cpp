// A C++ program built against an installed tinybase only, through find_package(tinybase) (see
// tests/install/CMakeLists.txt): the wrapper tinybase.hpp over the library it finds. Exits 0 and
// prints "ok ..." on success, 1 with the reason otherwise.
#include <tinybase.hpp>

#include <exception>
#include <iostream>
#include <string>

int main() {
    try {
        if (tinybase::version() != TB_VERSION_STRING) {
            std::cerr << "FAILED: tb_version() is " << tinybase::version() << ", the header says "
                      << TB_VERSION_STRING << "\n";
            return 1;
        }
        {
            tinybase::MergeableStore store("install-cpp");
            store.set_cell("pets", "fido", "status", tinybase::Value("installed"));
            std::optional<tinybase::Value> read = store.get_cell("pets", "fido", "status");
            if (!read || !read->is_string() || read->as_string() != "installed") {
                std::cerr << "FAILED: the cell read back is not the string \"installed\"\n";
                return 1;
            }
        }
        if (tb_debug_live_handles() != 0) {
            std::cerr << "FAILED: " << tb_debug_live_handles() << " handles still live\n";
            return 1;
        }
        std::cout << "ok: C++, tinybase " << tinybase::version() << "\n";
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "FAILED: " << e.what() << "\n";
        return 1;
    }
}
