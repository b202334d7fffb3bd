# `services.dice-lab`: the lab on a NixOS host.
#
# The three services run as hardened systemd units (`dice-lab-frontend`, `dice-lab-dice-roller`,
# `dice-lab-die-service`) that log JSON to the journal. `observability.enable` turns on the
# upstream Alloy, Loki, Tempo, Prometheus and Grafana modules and configures them from the same
# files under `observability/` and `dashboards/` that `dice-lab up` writes out, so the two ways into
# the lab never drift apart. Only the scrape targets of the three services are rewritten here, to
# follow the ports chosen below.
{
  config,
  lib,
  pkgs,
  ...
}: let
  inherit (lib) literalExpression mkEnableOption mkIf mkOption types;

  cfg = config.services.dice-lab;

  # `host:port` needs brackets around an IPv6 address.
  bracket = address:
    if lib.hasInfix ":" address
    then "[${address}]"
    else address;

  # Where the services reach each other: a wildcard listen address is reached on loopback.
  connectHost =
    if cfg.listenAddress == "0.0.0.0"
    then "127.0.0.1"
    else if cfg.listenAddress == "::"
    then "::1"
    else cfg.listenAddress;
  urlFor = port: "http://${bracket connectHost}:${toString port}";
  listenOn = port: "${bracket cfg.listenAddress}:${toString port}";

  # Where people's browsers reach what listens on `listenAddress`: a loopback address is the
  # browser's own machine, `localhost`; any other address is used as it is; a wildcard names no
  # address a browser could use, so nothing can be derived from it (an assertion below asks for
  # `frontend.grafanaUrl`).
  wildcard = builtins.elem cfg.listenAddress ["0.0.0.0" "::"];
  browserHost =
    if cfg.listenAddress == "localhost" || cfg.listenAddress == "::1" || lib.hasPrefix "127." cfg.listenAddress
    then "localhost"
    else bracket cfg.listenAddress;

  serviceOptions = name: port: {
    port = mkOption {
      type = types.port;
      default = port;
      description = "Port the ${name} listens on.";
    };
    environment = mkOption {
      type = types.attrsOf types.str;
      default = {};
      example = literalExpression ''{ RUST_LOG = "debug"; }'';
      description = ''
        Extra environment variables for the ${name}. Every setting of the service has one; run
        `${name} --help` for the list.
      '';
    };
  };

  telemetryEnvironment =
    if cfg.otlpEndpoint == null
    then {OTEL_SDK_DISABLED = "true";}
    else {OTEL_EXPORTER_OTLP_ENDPOINT = cfg.otlpEndpoint;};

  unit = name: description: environment: {
    inherit description;
    wantedBy = ["multi-user.target"];
    after = ["network.target"];
    environment = telemetryEnvironment // environment;
    serviceConfig = {
      ExecStart = lib.getExe' cfg.package name;
      DynamicUser = true;
      Restart = "on-failure";
      RestartSec = 2;
      # Longer than a service's own shutdown: its drain (10 s), span flush (5 s) and log flush
      # (2 s).
      TimeoutStopSec = 25;
      # Room for the connections each service accepts (--max-connections, 512 by default) and the
      # calls it makes, far above systemd's default of 1024.
      LimitNOFILE = 65536;
      CapabilityBoundingSet = "";
      LockPersonality = true;
      MemoryDenyWriteExecute = true;
      NoNewPrivileges = true;
      PrivateDevices = true;
      PrivateTmp = true;
      ProtectClock = true;
      ProtectControlGroups = true;
      ProtectHome = true;
      ProtectHostname = true;
      ProtectKernelLogs = true;
      ProtectKernelModules = true;
      ProtectKernelTunables = true;
      ProtectProc = "invisible";
      ProtectSystem = "strict";
      RestrictAddressFamilies = ["AF_INET" "AF_INET6" "AF_UNIX"];
      RestrictNamespaces = true;
      RestrictRealtime = true;
      RestrictSUIDSGID = true;
      SystemCallArchitectures = "native";
      SystemCallFilter = ["@system-service" "~@privileged" "~@resources"];
      UMask = "0077";
    };
  };

  observability = ../observability;
  prometheusConfig = lib.importJSON (observability + "/prometheus.json");
  servicePorts = {
    frontend = cfg.frontend.port;
    dice-roller = cfg.diceRoller.port;
    die-service = cfg.dieService.port;
  };
  scrapeConfigs =
    map (
      job:
        if servicePorts ? ${job.job_name}
        then job // {static_configs = [{targets = ["${bracket connectHost}:${toString servicePorts.${job.job_name}}"];}];}
        else job
    )
    prometheusConfig.scrape_configs;

  # Alloy reads every `*.alloy` file of a directory: the shared pipelines plus the journal source.
  alloyConfig = (import ../nix/alloy.nix {inherit pkgs;}).nixos;

  grafanaSecrets = "/var/lib/dice-lab/grafana";
  grafanaDashboards = lib.importJSON (observability + "/grafana/dashboards.json");
in {
  options.services.dice-lab = {
    enable = mkEnableOption "dice-lab, an observability lab of three Rust services that roll dice";

    package = mkOption {
      type = types.package;
      default = pkgs.dice-lab or (import ../nix/lab.nix pkgs);
      defaultText = literalExpression "pkgs.dice-lab, else this flake's own build (nix/lab.nix)";
      description = "The package with the `frontend`, `dice-roller` and `die-service` programs.";
    };

    listenAddress = mkOption {
      type = types.str;
      default = "127.0.0.1";
      example = "192.168.1.10";
      description = ''
        Address the three services listen on, and Grafana with
        {option}`services.dice-lab.observability.enable`. Links to Grafana use it too (see
        {option}`services.dice-lab.frontend.grafanaUrl`); with a wildcard (`0.0.0.0`, `::`), set
        that option to the address people's browsers use.
      '';
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Open the three services' ports in the firewall, and Grafana's with
        {option}`services.dice-lab.observability.enable`. Useful only with a
        {option}`services.dice-lab.listenAddress` other than loopback.
      '';
    };

    otlpEndpoint = mkOption {
      type = types.nullOr types.str;
      default =
        if cfg.observability.enable
        then "http://127.0.0.1:4318"
        else null;
      defaultText = literalExpression ''if observability.enable then "http://127.0.0.1:4318" (Alloy) else null'';
      description = "OTLP/HTTP endpoint the services send traces to; null turns trace export off.";
    };

    frontend =
      serviceOptions "frontend" 8400
      // {
        grafanaUrl = mkOption {
          type = types.nullOr types.str;
          default =
            if cfg.observability.enable && !wildcard
            then "http://${browserHost}:${toString config.services.grafana.settings.server.http_port}"
            else null;
          defaultText = lib.literalMD ''
            with `observability.enable`, `"http://localhost:3000"` for a loopback `listenAddress`,
            `"http://<listenAddress>:3000"` for any other but a wildcard, which needs it set; else
            `null`
          '';
          example = "http://lab.example.org:3000";
          description = ''
            Grafana as people's browsers reach it, for the page's links to a trace; with
            {option}`services.dice-lab.observability.enable`, also Grafana's own `root_url`, for
            the links Grafana makes.
          '';
        };
      };

    diceRoller = serviceOptions "dice-roller" 8401;

    dieService =
      serviceOptions "die-service" 8402
      // {
        diceFile = mkOption {
          type = types.nullOr types.path;
          default = null;
          description = "A dice.json to serve instead of the packaged one.";
        };
      };

    observability.enable = mkEnableOption ''
      the observability stack: Grafana Alloy receives traces and reads the services' journal,
      Tempo stores traces, Loki logs, Prometheus scrapes metrics, and Grafana shows them all with
      dice-lab's data sources and dashboards. Grafana's admin password is generated into
      `${grafanaSecrets}/admin-password`
    '';
  };

  config = mkIf cfg.enable (lib.mkMerge [
    {
      systemd.services.dice-lab-die-service = unit "die-service" "dice-lab die-service: die specifications" (
        {DIE_SERVICE_LISTEN = listenOn cfg.dieService.port;}
        // lib.optionalAttrs (cfg.dieService.diceFile != null) {DICE_FILE = "${cfg.dieService.diceFile}";}
        // cfg.dieService.environment
      );

      systemd.services.dice-lab-dice-roller = unit "dice-roller" "dice-lab dice-roller: rolls dice, one or many at once" (
        {
          DICE_ROLLER_LISTEN = listenOn cfg.diceRoller.port;
          DIE_SERVICE_URL = urlFor cfg.dieService.port;
        }
        // cfg.diceRoller.environment
      );

      systemd.services.dice-lab-frontend = unit "frontend" "dice-lab frontend: the web UI" (
        {
          FRONTEND_LISTEN = listenOn cfg.frontend.port;
          DIE_SERVICE_URL = urlFor cfg.dieService.port;
          DICE_ROLLER_URL = urlFor cfg.diceRoller.port;
        }
        // lib.optionalAttrs (cfg.frontend.grafanaUrl != null) {GRAFANA_URL = cfg.frontend.grafanaUrl;}
        // cfg.frontend.environment
      );

      networking.firewall.allowedTCPPorts = mkIf cfg.openFirewall (
        [cfg.frontend.port cfg.diceRoller.port cfg.dieService.port]
        ++ lib.optional cfg.observability.enable config.services.grafana.settings.server.http_port
      );
    }

    (mkIf cfg.observability.enable {
      assertions = [
        {
          assertion = !(wildcard && cfg.frontend.grafanaUrl == null);
          message = ''
            services.dice-lab.listenAddress is "${cfg.listenAddress}", which listens everywhere but
            is no address a browser can use, so dice-lab cannot tell where people reach Grafana.
            Set services.dice-lab.frontend.grafanaUrl to Grafana as their browsers reach it, e.g.
            "http://192.168.1.10:3000" or "http://lab.example.org:3000": the page links each trace
            there, and Grafana's root_url follows it.
          '';
        }
      ];

      services.alloy = {
        enable = true;
        configPath = alloyConfig;
        extraFlags = ["--server.http.listen-addr=127.0.0.1:12345" "--disable-reporting"];
      };

      services.tempo = {
        enable = true;
        # Tempo 2.x also takes its ingester's timings (search within about a second of a
        # click), in a block Tempo 3 refuses.
        settings = import ../nix/tempo.nix {inherit lib;} (lib.getVersion (config.services.tempo.package or pkgs.tempo));
        extraFlags = ["-config.expand-env=true"];
      };

      services.loki = {
        enable = true;
        configuration = lib.importJSON (observability + "/loki.json");
        extraFlags = ["-config.expand-env=true"];
      };
      systemd.services.loki.environment.LOKI_DATA_DIR = config.services.loki.dataDir;

      services.prometheus = {
        enable = true;
        listenAddress = "127.0.0.1";
        port = 9090;
        globalConfig = prometheusConfig.global;
        inherit scrapeConfigs;
        # The module sets the listen address itself; the other flags turn on the remote-write
        # receiver (Tempo's span metrics) and exemplars.
        extraFlags =
          builtins.filter (flag: !lib.hasPrefix "--web.listen-address=" flag)
          (lib.importJSON (observability + "/prometheus-flags.json"));
      };

      services.grafana = {
        enable = true;
        settings = lib.recursiveUpdate (lib.importJSON (observability + "/grafana/settings.json")) {
          # Grafana is for people's browsers: it listens where the services do, and the links it
          # makes (root_url) point where the page's links to it do.
          server = {
            http_addr = cfg.listenAddress;
            root_url = mkIf (cfg.frontend.grafanaUrl != null) (lib.mkDefault cfg.frontend.grafanaUrl);
          };
          security = {
            admin_password = "$__file{${grafanaSecrets}/admin-password}";
            secret_key = "$__file{${grafanaSecrets}/secret-key}";
          };
        };
        provision = {
          enable = true;
          datasources.settings = lib.importJSON (observability + "/grafana/datasources.json");
          dashboards.settings =
            grafanaDashboards
            // {
              providers =
                map (provider: lib.recursiveUpdate provider {options.path = "${../dashboards}";})
                grafanaDashboards.providers;
            };
        };
      };

      # Grafana's admin password and signing key: made once, readable only by Grafana.
      systemd.services.dice-lab-grafana-secrets = {
        description = "dice-lab: Grafana's admin password and secret key";
        requiredBy = ["grafana.service"];
        before = ["grafana.service"];
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
          UMask = "0077";
        };
        script = ''
          install -d -m 0755 ${dirOf grafanaSecrets}
          install -d -m 0700 -o grafana -g grafana ${grafanaSecrets}
          for name in admin-password secret-key; do
            if [ ! -s ${grafanaSecrets}/$name ]; then
              head -c 24 /dev/urandom | base64 | tr -d '/+=\n' > ${grafanaSecrets}/$name
            fi
            chown grafana:grafana ${grafanaSecrets}/$name
          done
        '';
      };
    })
  ]);
}
