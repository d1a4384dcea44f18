// ../u8_l2_driver.cu compiled for the host against this emulation (NNM_CUDA_EMULATION is set by CMake for
// every source of this folder), into nnm::cuda_emulated.
#include "../u8_l2_driver.cu"
