# Deployment tests: the container image (deploy/), the Helm chart (helm/flock/),
# its alert rules and dashboard, and the chart run as Kubernetes would run it.
# Included from tests/CMakeLists.txt. None of them exercises C++ that the
# sanitizer build would check differently, so they run in the plain build only.
if(FLOCK_SANITIZE)
  return()
endif()
include(${CMAKE_CURRENT_LIST_DIR}/helm.cmake OPTIONAL)
include(${CMAKE_CURRENT_LIST_DIR}/image.cmake OPTIONAL)
include(${CMAKE_CURRENT_LIST_DIR}/monitoring.cmake OPTIONAL)
include(${CMAKE_CURRENT_LIST_DIR}/k8s.cmake OPTIONAL)
