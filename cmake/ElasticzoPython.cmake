# The pybind11 extension module elasticzo._core: a thin layer over elasticzo_core.
find_package(Python 3.9 REQUIRED COMPONENTS Interpreter Development.Module)
find_package(pybind11 CONFIG REQUIRED)
file(GLOB EZ_BINDING_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/bindings/*.cpp)
pybind11_add_module(_core MODULE ${EZ_BINDING_SOURCES})
target_link_libraries(_core PRIVATE elasticzo_core)
install(TARGETS _core LIBRARY DESTINATION elasticzo)
