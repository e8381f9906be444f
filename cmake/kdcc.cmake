# kdcc_add_model: compile an ONNX model to C at build time and wrap the result
# in a static library.
#
#   kdcc_add_model(TARGET <target> MODEL <model.onnx|model.txt>
#                  [NAME <c-prefix>]          # default: <target> made a C identifier
#                  [OUTPUT_DIR <dir>]         # default: ${CMAKE_CURRENT_BINARY_DIR}/kdcc/<target>
#                  [OPTIONS <kdcc options>...]  # e.g. --batch 1, --shape in=1x3x32x32, --no-fold
#                  [DEPENDS <files>...])      # more inputs (e.g. --const tensor files)
#
# Creates the static library <target> from <OUTPUT_DIR>/<NAME>.c, with <OUTPUT_DIR>
# (where <NAME>.h is) as a PUBLIC include directory and the math library linked.
# kdcc runs again when the model, its external data files, or kdcc itself change
# (DEPENDS on the model and the executable; a depfile for external data where
# the generator supports DEPFILE). Sets <target>_KDCC_SOURCE and <target>_KDCC_HEADER
# in the caller's scope.
include_guard(GLOBAL)
cmake_policy(PUSH)
cmake_policy(VERSION 3.18...3.28)

function(kdcc_add_model)
  cmake_parse_arguments(PARSE_ARGV 0 KA "" "TARGET;MODEL;NAME;OUTPUT_DIR" "OPTIONS;DEPENDS")
  if(KA_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "kdcc_add_model: unknown arguments: ${KA_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT KA_TARGET OR NOT KA_MODEL)
    message(FATAL_ERROR "kdcc_add_model: TARGET and MODEL are required")
  endif()
  get_property(langs GLOBAL PROPERTY ENABLED_LANGUAGES)
  if(NOT "C" IN_LIST langs)
    message(FATAL_ERROR "kdcc_add_model: the project must enable C (project(... LANGUAGES C))")
  endif()
  if(NOT KA_NAME)
    string(MAKE_C_IDENTIFIER "${KA_TARGET}" KA_NAME)
  endif()
  if(NOT KA_OUTPUT_DIR)
    set(KA_OUTPUT_DIR "${CMAKE_CURRENT_BINARY_DIR}/kdcc/${KA_TARGET}")
  endif()
  get_filename_component(model "${KA_MODEL}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  get_filename_component(outdir "${KA_OUTPUT_DIR}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_BINARY_DIR}")
  set(src "${outdir}/${KA_NAME}.c")
  set(hdr "${outdir}/${KA_NAME}.h")
  set(dep "${outdir}/${KA_NAME}.d")

  if(TARGET kdcc::kdcc)
    set(exe kdcc::kdcc)
  elseif(TARGET kdcc)        # inside kdcc's own build tree
    set(exe kdcc)
  else()
    message(FATAL_ERROR "kdcc_add_model: no kdcc executable target (find_package(kdcc) first)")
  endif()

  # DEPFILE: Ninja since CMake 3.7; Makefile generators since 3.20; all since 3.21
  set(depfile_args "")
  if(CMAKE_GENERATOR MATCHES "Ninja" OR CMAKE_VERSION VERSION_GREATER_EQUAL 3.21
     OR (CMAKE_VERSION VERSION_GREATER_EQUAL 3.20 AND CMAKE_GENERATOR MATCHES "Makefiles"))
    set(depfile_args DEPFILE "${dep}")
  endif()

  file(MAKE_DIRECTORY "${outdir}")
  add_custom_command(
    OUTPUT "${src}" "${hdr}"
    COMMAND ${exe} "${model}" -o "${src}" --name "${KA_NAME}" --depfile "${dep}" ${KA_OPTIONS}
    DEPENDS "${model}" "$<TARGET_FILE:${exe}>" ${KA_DEPENDS}
    ${depfile_args}
    COMMENT "kdcc: ${KA_MODEL} -> ${KA_NAME}.c, ${KA_NAME}.h"
    VERBATIM)
  add_library(${KA_TARGET} STATIC "${src}" "${hdr}")
  target_include_directories(${KA_TARGET} PUBLIC "$<BUILD_INTERFACE:${outdir}>")
  set_target_properties(${KA_TARGET} PROPERTIES C_STANDARD 99 C_STANDARD_REQUIRED ON)
  if(NOT KDCC_MATH_LIBRARY)
    find_library(KDCC_MATH_LIBRARY m)
  endif()
  if(KDCC_MATH_LIBRARY)
    target_link_libraries(${KA_TARGET} PUBLIC "${KDCC_MATH_LIBRARY}")
  endif()
  set(${KA_TARGET}_KDCC_SOURCE "${src}" PARENT_SCOPE)
  set(${KA_TARGET}_KDCC_HEADER "${hdr}" PARENT_SCOPE)
endfunction()

cmake_policy(POP)
