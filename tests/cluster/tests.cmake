# Cluster tests: three real flockd nodes on 127.0.0.1 (plus HAProxy in front of them), see
# README.md here. Included from tests/CMakeLists.txt. One ctest test per test file.
#
# Needs /usr/bin/python3 with pytest (python3-pytest) and haproxy (/usr/sbin/haproxy).

file(GLOB FLOCK_CLUSTER_TEST_FILES CONFIGURE_DEPENDS
     ${CMAKE_CURRENT_LIST_DIR}/test_*.py)

foreach(test_file ${FLOCK_CLUSTER_TEST_FILES})
  get_filename_component(test_name ${test_file} NAME_WE)
  add_test(NAME cluster.${test_name}
           COMMAND /usr/bin/python3 -m pytest -q -x -p no:cacheprovider ${test_file}
           WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR})
  set_tests_properties(cluster.${test_name} PROPERTIES
                       ENVIRONMENT "FLOCK_BROKER=$<TARGET_FILE:flockd>;PYTHONDONTWRITEBYTECODE=1"
                       TIMEOUT 900
                       LABELS cluster)
endforeach()
