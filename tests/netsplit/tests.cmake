# Netsplit test: three flockd nodes in Linux network namespaces, a link cut and healed.
# Included from tests/CMakeLists.txt; see README.md here. Needs root (it creates namespaces;
# without them it skips), iproute2, and /usr/bin/python3 with pytest.

add_test(NAME netsplit.test_netsplit
         COMMAND /usr/bin/python3 -m pytest -q -x -rs -p no:cacheprovider
                 ${CMAKE_CURRENT_LIST_DIR}/test_netsplit.py
         WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR})
set_tests_properties(netsplit.test_netsplit PROPERTIES
                     ENVIRONMENT "FLOCK_BROKER=$<TARGET_FILE:flockd>;PYTHONDONTWRITEBYTECODE=1"
                     TIMEOUT 600
                     LABELS cluster)
