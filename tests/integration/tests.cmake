# Integration tests: the real flockd binary against raw-socket, mosquitto and paho clients.
# Included from tests/CMakeLists.txt. One ctest test per test file; see README.md here.
#
# Needs /usr/bin/python3 with pytest (python3-pytest), python3-paho-mqtt and mosquitto-clients.

file(GLOB FLOCK_INTEGRATION_TEST_FILES CONFIGURE_DEPENDS
     ${CMAKE_CURRENT_LIST_DIR}/test_*.py)

foreach(test_file ${FLOCK_INTEGRATION_TEST_FILES})
  get_filename_component(test_name ${test_file} NAME_WE)
  add_test(NAME integration.${test_name}
           COMMAND /usr/bin/python3 -m pytest -q -x -p no:cacheprovider ${test_file}
           WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR})
  set_tests_properties(integration.${test_name} PROPERTIES
                       ENVIRONMENT "FLOCK_BROKER=$<TARGET_FILE:flockd>;FLOCK_BENCH=$<TARGET_FILE:flock-bench>;PYTHONDONTWRITEBYTECODE=1"
                       TIMEOUT 900
                       LABELS integration)
endforeach()
