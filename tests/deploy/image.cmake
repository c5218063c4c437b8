# The container image (deploy/Containerfile, deploy/build-image.sh): built with
# podman from this build's flockd and flockctl (--prebuilt), its metadata and
# contents checked, flockd run from it on a read-only root file system with
# --network host and --network none, an MQTT client against it, SIGTERM,
# a restart on the same /data (tests/deploy/image/image_test.py).
# Needs root and the Debian packages podman, runc and debootstrap (installed by
# the test when missing). 1-2 minutes with the debootstrapped base cached in
# /var/tmp/flock-image-cache; 2-5 minutes on a fresh machine, most of it
# debootstrap (about 30 s on an idle machine, 3.5 minutes at load 8).
add_test(NAME deploy.image
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/image/image_test.py
                 --bin-dir $<TARGET_FILE_DIR:flockd>)
set_tests_properties(deploy.image PROPERTIES
                     TIMEOUT 900
                     LABELS deploy
                     SKIP_RETURN_CODE 77
                     ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
