# The pybind11 extension module elasticzo._core: a thin layer over elasticzo_core.
find_package(Python 3.9 REQUIRED COMPONENTS Interpreter Development.Module)
find_package(pybind11 CONFIG REQUIRED)
file(GLOB EZ_BINDING_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/bindings/*.cpp)
pybind11_add_module(_core MODULE ${EZ_BINDING_SOURCES})
target_link_libraries(_core PRIVATE elasticzo_core)
install(TARGETS _core LIBRARY DESTINATION elasticzo)
# The MNIST files the repository carries (11.6 MB) go into the wheel, so that `elasticzo train` and
# load_dataset("mnist") work from any folder of an installed package, offline (elasticzo/data/locate.py).
install(FILES ${PROJECT_SOURCE_DIR}/data/mnist/train-images-idx3-ubyte.gz
              ${PROJECT_SOURCE_DIR}/data/mnist/train-labels-idx1-ubyte.gz
              ${PROJECT_SOURCE_DIR}/data/mnist/t10k-images-idx3-ubyte.gz
              ${PROJECT_SOURCE_DIR}/data/mnist/t10k-labels-idx1-ubyte.gz
              ${PROJECT_SOURCE_DIR}/data/mnist/README.md
        DESTINATION elasticzo/datasets/mnist)
