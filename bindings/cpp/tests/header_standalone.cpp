// tinybase.hpp compiles as the first and only include (built with -Wall -Wextra -Werror -pedantic).
#include "tinybase.hpp"

int tinybase_header_standalone() { return tinybase::Value(1).is_number() ? 0 : 1; }
