# Resolves SPARKPS_CUDA (AUTO|ON|OFF) into SPARKPS_HAVE_CUDA and, when on,
# enables the CUDA language with cuBLAS and the CUDA runtime as imported
# targets (CUDA::cublas, CUDA::cudart). Included from the top level because
# enable_language() must run there for every directory to link CUDA code.
string(TOUPPER "${SPARKPS_CUDA}" _ps_cuda)
if(NOT _ps_cuda MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "SPARKPS_CUDA=${SPARKPS_CUDA}: want AUTO, ON or OFF")
endif()
set(SPARKPS_HAVE_CUDA OFF)

if(NOT _ps_cuda STREQUAL "OFF")
  # check_language() only searches PATH; the toolkit's usual home is a
  # second guess, passed the way enable_language() reads it (CUDACXX).
  if(NOT DEFINED CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX})
    find_program(SPARKPS_NVCC nvcc HINTS /usr/local/cuda/bin)
    if(SPARKPS_NVCC)
      set(ENV{CUDACXX} "${SPARKPS_NVCC}")
    endif()
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    # NCCL sums a device group's gradients (--device cuda:0,cuda:1, see
    # gpu/nccl_comm.cu); it ships beside the toolkit (or as libnccl-dev).
    get_filename_component(_ps_cuda_root "${CMAKE_CUDA_COMPILER}" DIRECTORY)
    get_filename_component(_ps_cuda_root "${_ps_cuda_root}" DIRECTORY)
    find_path(SPARKPS_NCCL_INCLUDE_DIR nccl.h
              HINTS ${_ps_cuda_root}/include /usr/local/cuda/include)
    find_library(SPARKPS_NCCL_LIBRARY nccl
                 HINTS ${_ps_cuda_root}/lib64 /usr/local/cuda/lib64)
    if(SPARKPS_NCCL_INCLUDE_DIR AND SPARKPS_NCCL_LIBRARY)
      set(SPARKPS_HAVE_CUDA ON)
    elseif(_ps_cuda STREQUAL "ON")
      message(FATAL_ERROR
        "SPARKPS_CUDA=ON but NCCL (nccl.h and libnccl) was not found under "
        "${_ps_cuda_root}, /usr/local/cuda or the system paths: install "
        "NCCL (NVIDIA's repository: libnccl-dev), pass "
        "-DSPARKPS_NCCL_INCLUDE_DIR=... -DSPARKPS_NCCL_LIBRARY=..., or "
        "configure with -DSPARKPS_CUDA=OFF")
    else()
      message(STATUS "sparkps: nvcc found but no NCCL, building without CUDA")
    endif()
  elseif(_ps_cuda STREQUAL "ON")
    message(FATAL_ERROR
      "SPARKPS_CUDA=ON but no working CUDA compiler (nvcc) was found on PATH "
      "or in /usr/local/cuda/bin: install the CUDA toolkit, set CUDACXX or "
      "-DCMAKE_CUDA_COMPILER=/path/to/nvcc, or configure with "
      "-DSPARKPS_CUDA=OFF")
  else()
    message(STATUS "sparkps: no nvcc found, building without CUDA")
  endif()
endif()

if(SPARKPS_HAVE_CUDA)
  # Turing (the T4 of many cloud GPU nodes), Ampere and Hopper: CUDA 13
  # dropped everything before sm_75. Each entry also embeds PTX, so newer
  # GPUs JIT-compile it; an older one is refused when the backend opens.
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 75 80 90)
  endif()
  # One shared libcudart for the whole process (we link CUDA::cudart).
  if(NOT DEFINED CMAKE_CUDA_RUNTIME_LIBRARY)
    set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)
  endif()
  enable_language(CUDA)
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  find_package(CUDAToolkit REQUIRED)
  message(STATUS "sparkps: CUDA backend on (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, "
                 "architectures ${CMAKE_CUDA_ARCHITECTURES})")
  message(STATUS "sparkps: NCCL ${SPARKPS_NCCL_LIBRARY}")
endif()
