/* The header compiles standalone as strict C99 (included first, nothing before it). */
#include "tinybase.h"

int main(void) {
    tb_value v = tb_value_null();
    return v.kind == TB_VALUE_NULL ? 0 : 1;
}
