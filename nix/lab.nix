# The lab built for `pkgs`, the one way the flake, its overlay and the NixOS module build it: with
# the lld of the LLVM that rustc was built with (`rustc.llvmPackages`), from `buildPackages`
# because the linker runs at build time, as the compiler does.
pkgs:
pkgs.callPackage ./package.nix {
  inherit (pkgs.buildPackages.rustc.llvmPackages) lld;
}
