# The lab's Tempo settings for a Tempo of `version`: observability/tempo.json, with Tempo 2's
# ingester timings (observability/tempo-2.json, a block Tempo 3 refuses) merged in for 2.x, as
# `dice-lab up` merges them. The NixOS module and the flake's configuration check both use it.
{lib}: version:
lib.recursiveUpdate
(lib.importJSON ../observability/tempo.json)
(lib.optionalAttrs (lib.hasPrefix "2." version) (lib.importJSON ../observability/tempo-2.json))
