// The header compiles standalone as C++ (included first, nothing before it).
#include "tinybase.h"

static_assert(TB_OK == 0, "TB_OK is zero");

int main() {
    tb_value v = tb_value_null();
    return v.kind == TB_VALUE_NULL ? 0 : 1;
}
