# The alert rules and the Grafana dashboard of the Helm chart (helm/flock/files/).
# Included from tests/deploy/tests.cmake. See tests/deploy/monitoring/ and docs/monitoring.md.
#  deploy.monitoring.rules: promtool check rules / test rules; every alert labelled,
#    explained and unit-tested both ways; each unit test bites (three mutations per
#    alert must fail it); the dashboard's structure. About 15 s.
#  deploy.monitoring.live: a real Prometheus scraping a real 3-node TLS flockd
#    cluster with traffic; every alert and dashboard expression returns data; the
#    alerts that should be active (a refused rogue peer, a 1-day certificate) are,
#    and no others. About 10 s.
# Needs /usr/bin/python3 with pytest, yaml and paho-mqtt (python3-pytest, python3-yaml,
# python3-paho-mqtt), prometheus (prometheus, promtool) and openssl.
add_test(NAME deploy.monitoring.rules
         COMMAND /usr/bin/python3 -m pytest -v -s -p no:cacheprovider test_rules.py
         WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR}/monitoring)
set_tests_properties(deploy.monitoring.rules PROPERTIES
                     ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1"
                     TIMEOUT 180
                     LABELS deploy)

add_test(NAME deploy.monitoring.live
         COMMAND /usr/bin/python3 -m pytest -v -s -p no:cacheprovider test_live.py
         WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR}/monitoring)
set_tests_properties(deploy.monitoring.live PROPERTIES
                     ENVIRONMENT "FLOCK_BROKER=$<TARGET_FILE:flockd>;PYTHONDONTWRITEBYTECODE=1"
                     TIMEOUT 240
                     LABELS deploy)
