/* tests/device_spill_sample.cu - a kernel that spills registers on purpose.
 *
 * Eighteen live doubles do not fit in 24 registers (-maxrregcount=24): ptxas must spill.
 * tests/device_spills.cmake builds it with and without the no-spill flags that
 * cuda/sources.cmake puts on the wipe kernel and the allocation probe, to show that those flags
 * do turn a spill into a failed build. */
__global__ void spill_sample(const double *a, double *b)
{
    double v0 = a[0], v1 = a[1], v2 = a[2], v3 = a[3], v4 = a[4], v5 = a[5], v6 = a[6],
           v7 = a[7], v8 = a[8], v9 = a[9], v10 = a[10], v11 = a[11], v12 = a[12], v13 = a[13],
           v14 = a[14], v15 = a[15], v16 = a[16], v17 = a[17];
    b[threadIdx.x] = v0 * v17 + v1 * v16 + v2 * v15 + v3 * v14 + v4 * v13 + v5 * v12 + v6 * v11 +
                     v7 * v10 + v8 * v9 +
                     v0 * v1 * v2 * v3 * v4 * v5 * v6 * v7 * v8 * v9 * v10 * v11 * v12 * v13 *
                         v14 * v15 * v16 * v17;
    b[threadIdx.x + 1] = v17 / v0 + v16 / v1 + v15 / v2 + v14 / v3 + v13 / v4 + v12 / v5 +
                         v11 / v6 + v10 / v7;
}
