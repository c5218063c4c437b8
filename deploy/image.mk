# The container image (deploy/README.md). Included from the Makefile.
#   make image          localhost/flock:VERSION from the binaries of `make build`
#                       (deploy/build-image.sh --prebuilt build/bin; about 20 s
#                       once the debootstrapped base is cached)
#   make image-source   the same image compiled inside its build stage, as an
#                       operator without a Debian 12 build would (5+ minutes)
# More flags: make image IMAGE_ARGS="--tag registry.example/flock:1 --save flock.oci.tar"
# The podman storage is /var/tmp/flock-podman unless IMAGE_ARGS has --storage;
# `source /var/tmp/flock-podman/podman.env` before using podman on it.
.PHONY: image image-source
IMAGE_ARGS ?=
image: build
	$(SUDO) deploy/build-image.sh --prebuilt $(BUILD_DIR)/bin --jobs $(JOBS) $(IMAGE_ARGS)

image-source: deps
	$(SUDO) deploy/build-image.sh --jobs $(JOBS) $(IMAGE_ARGS)
