# Pins for cvm/firmware/build-ovmf: the Debian source package of EDK II that
# the AmdSev OVMF firmware is built from. Sourced by build-ovmf (bash); the
# SHA-256 of this file and of build-ovmf names the cache directory, so any
# change here means a new build.
#
# Taken from Debian trixie's source index
#   http://deb.debian.org/debian/dists/trixie/main/source/Sources.xz
# (stanza "Package: edk2", fields Version and Checksums-Sha256).
# To move to a newer Debian version: read that stanza again, update all the
# values below, run build-ovmf, and record the new OVMF.fd SHA-256 in README.md.
# shellcheck shell=bash disable=SC2034

# The Debian version: its upload is described at the top of debian/changelog
# in the debian tarball, which build-ovmf checks against this value. It is
# also what the firmware reports as its version string (as Debian's own
# OVMF builds do).
EDK2_DEBIAN_VERSION='2025.02-8+deb13u1'
# Top directory of the orig tarball.
EDK2_UPSTREAM_DIR='edk2-2025.02'

# Where the files live on a Debian mirror (relative to the mirror's root).
EDK2_POOL='pool/main/e/edk2'

# The source package's files and their SHA-256.
# The .dsc is not needed for the build (it lists the two tarballs below with
# these same SHA-256 and carries the uploader's signature); build-ovmf
# fetches it when the mirror serves it, checks it against this pin and
# checks that it lists the two tarball pins, and goes on without it when not.
EDK2_DSC='edk2_2025.02-8+deb13u1.dsc'
EDK2_DSC_SHA256='9e2115e7d75a3930b082216ef3378cca040fde049c86f4547e8ed6da1515ffee'
# Upstream EDK II 2025.02 with the submodules it uses (openssl, brotli, ...)
# and with known prebuilt binaries removed by Debian.
EDK2_ORIG='edk2_2025.02.orig.tar.xz'
EDK2_ORIG_SHA256='b63b6053d6d89c74d9291f9e96fde1584be99e6fb9c169ba9511505129d6b049'
# Debian's packaging: debian/rules and the quilt series debian/patches/.
EDK2_DEBIAN='edk2_2025.02-8+deb13u1.debian.tar.xz'
EDK2_DEBIAN_SHA256='e2a7f6fc58640818416a028d6d5e9dfc255697a7cdc60c14566c236df6bd9b08'
