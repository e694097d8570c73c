// Thread control. With OpenMP absent everything runs serially; results never depend on the thread count
// because every kernel splits work into chunks fixed by the problem size, not by the number of threads.
#pragma once

namespace ez {

int num_threads();
void set_num_threads(int n);  // n >= 1
bool openmp_enabled();

}  // namespace ez
