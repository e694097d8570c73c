# The pybind11 extension module elasticzo._core: a thin layer over elasticzo_core.
find_package(Python 3.9 REQUIRED COMPONENTS Interpreter Development.Module)
find_package(pybind11 CONFIG REQUIRED)
file(GLOB EZ_BINDING_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/bindings/*.cpp)
pybind11_add_module(_core MODULE ${EZ_BINDING_SOURCES})
target_link_libraries(_core PRIVATE elasticzo_core)
install(TARGETS _core LIBRARY DESTINATION elasticzo)
# The MNIST files the repository carries (11.6 MB) go into the wheel, so that `elasticzo train` and
# load_dataset("mnist") work from any folder of an installed package, offline (elasticzo/data/locate.py).
# The sdist leaves data/ out (pyproject.toml, sdist.exclude): a package built from it carries no MNIST and
# load_dataset tells how to download it. scripts/release.sh checks that every wheel it makes carries the files.
set(_ez_mnist_files train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz
                    t10k-labels-idx1-ubyte.gz README.md)
list(TRANSFORM _ez_mnist_files PREPEND ${PROJECT_SOURCE_DIR}/data/mnist/)
if(EXISTS ${PROJECT_SOURCE_DIR}/data/mnist)
  install(FILES ${_ez_mnist_files} DESTINATION elasticzo/datasets/mnist)
else()
  message(STATUS "No data/mnist in this source tree (an sdist): the package will not carry MNIST")
endif()
