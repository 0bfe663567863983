/* The demo program for `cargo xtask demo`: a few files, one of which the demo edits. */
#include <stdio.h>

int greeting_count(void);
const char *greeting(void);
double mean(const double *values, int n);

int main(void) {
    double values[] = {1.5, 2.5, 4.0};
    for (int i = 0; i < greeting_count(); i++)
        printf("%s\n", greeting());
    printf("mean: %.2f\n", mean(values, 3));
    return 0;
}
