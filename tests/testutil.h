/* testutil.h — the shared main() of our CUnit programs.
 *
 * Each test file lists its cases in CU_TestInfo arrays and its suites in a
 * CU_SuiteInfo array, then ends with CSL_TEST_MAIN(suites). The program runs
 * every suite with CUnit's basic interface (its "Run Summary" lines are what
 * CI reads) and exits 0 only when no assertion or test failed. */
#ifndef CSL_TESTUTIL_H
#define CSL_TESTUTIL_H

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>

static inline int csl_test_run(CU_SuiteInfo *suites)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    if (CU_register_suites(suites) != CUE_SUCCESS) {
        fprintf(stderr, "cannot register suites: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_NORMAL);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_tests_failed() + CU_get_number_of_failures();
    unsigned run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (run == 0) {
        fprintf(stderr, "no test ran\n");
        return 2;
    }
    return failed ? 1 : 0;
}

#define CSL_TEST_MAIN(suites)                                                                      \
    int main(void)                                                                                 \
    {                                                                                              \
        return csl_test_run(suites);                                                               \
    }

#endif
