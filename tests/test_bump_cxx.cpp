// tests/test_bump_cxx.cpp - the public headers and the bump core compiled as C++ (-std=c++17,
// -pedantic): they must compile with extern "C" linkage and behave as in C.
#include "bump_checks.h"

int main()
{
    return bump_checks() == 0 ? 0 : 1;
}
