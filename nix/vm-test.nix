# A NixOS VM with `services.dice-lab` and its observability stack: Grafana shows the anonymous
# visitor the provisioned dashboards and finds every provisioned data source healthy, and one
# "Roll Multiple" through the frontend must show up as a trace in Tempo with N `roll` spans, as log
# lines in Loki that carry the trace id, and as growth of `dice_rolls_total` in Prometheus.
{
  pkgs,
  module,
}: let
  # What Grafana is provisioned with, read from the files it is provisioned from (builtins only,
  # so that the repository's tests can evaluate the script without nixpkgs).
  readJSON = file: builtins.fromJSON (builtins.readFile file);
  dashboards =
    map (name: {inherit (readJSON (../dashboards + "/${name}")) uid title;})
    (builtins.filter (name: builtins.match ".*[.]json" name != null)
      (builtins.attrNames (builtins.readDir ../dashboards)));
  datasources =
    map (source: {inherit (source) uid type name;})
    (readJSON ../observability/grafana/datasources.json).datasources;
in
  pkgs.testers.runNixOSTest {
    name = "dice-lab";

    nodes.machine = {
      imports = [module];
      services.dice-lab = {
        enable = true;
        observability.enable = true;
        diceRoller.environment.ROLL_DELAY_MS = "20..80";
      };
      environment.systemPackages = [pkgs.curl];
      virtualisation = {
        memorySize = 3072;
        cores = 2;
      };
    };

    testScript = ''
      import json
      import time
      import urllib.parse

      TIMES = 10
      GRAFANA = "http://127.0.0.1:3000"
      # Read by Nix from dashboards/*.json and observability/grafana/datasources.json.
      DASHBOARDS = ${builtins.toJSON dashboards}
      DATASOURCES = ${builtins.toJSON datasources}


      def get(url):
          return json.loads(machine.succeed(f"curl -sf '{url}'"))


      def fetch(url):
          """The status and body of a GET of `url`, whatever the status, and without credentials:
          Grafana takes such a request as its anonymous visitor's."""
          out = machine.execute(f"curl -s -w '\\n%{{http_code}}' '{url}'")[1]
          body, _, status = out.rpartition("\n")
          return int(status or 0), body


      def eventually(what, check, timeout=180):
          deadline = time.monotonic() + timeout
          last = "no answer"
          while True:
              try:
                  value = check()
                  if value:
                      return value
              except Exception as error:
                  last = error
                  machine.log(f"still waiting for {what}: {error}")
              if time.monotonic() > deadline:
                  raise AssertionError(f"timed out waiting for {what}; the last answer: {last}")
              time.sleep(2)


      def grafana_dashboards():
          """Grafana's search, asked as the anonymous visitor, lists every dashboard of dashboards/
          by its uid and title: the provisioning worked and visitors may see the results."""
          status, body = fetch(f"{GRAFANA}/api/search?type=dash-db")
          assert status == 200, f"/api/search answered {status}: {body}"
          found = {(hit["uid"], hit["title"]) for hit in json.loads(body)}
          missing = [board for board in DASHBOARDS if (board["uid"], board["title"]) not in found]
          assert not missing, f"the anonymous visitor does not find {missing}; Grafana lists {sorted(found)}"
          return True


      def datasource_healthy(source):
          """Grafana's health check of a provisioned data source, asked as the anonymous visitor: the
          route needs `datasources:query` (pkg/api/api.go), which Grafana gives the Viewer role on
          each data source it creates. Tempo's plugin has no backend health check (Grafana 12 and 13
          answer 501 Not Implemented, older versions 404); for it, what Grafana's own "Save & test"
          asks: Tempo's /api/echo through the data source proxy."""
          uid = source["uid"]
          status, body = fetch(f"{GRAFANA}/api/datasources/uid/{uid}/health")
          if status in (404, 501) and source["type"] == "tempo":
              status, body = fetch(f"{GRAFANA}/api/datasources/proxy/uid/{uid}/api/echo")
              assert status == 200 and body.strip() == "echo", \
                  f"data source {uid}: Tempo's /api/echo through Grafana answered {status}: {body}"
              return True
          assert status == 200 and json.loads(body).get("status") == "OK", \
              f"data source {uid} ({source['type']}): its health check answered {status}: {body}"
          return True


      def tempo_spans(body):
          """The spans of a Tempo trace-by-id answer, in either shape Tempo gives: `batches`
          (/api/traces, Tempo 2.x and 3.x) or `trace.resourceSpans` (/api/v2/traces)."""
          resource_spans = body.get("batches") or body.get("trace", {}).get("resourceSpans", [])
          return [span
                  for resource in resource_spans
                  for scope in resource.get("scopeSpans", [])
                  for span in scope.get("spans", [])]


      def rolls_total():
          result = get("http://127.0.0.1:9090/api/v1/query?query=sum(dice_rolls_total)")
          samples = result["data"]["result"]
          return float(samples[0]["value"][1]) if samples else 0.0


      def journal(unit):
          return machine.execute(f"journalctl -b -u {unit}.service --no-pager -n 200")[1]


      def wait_ready(unit, url, timeout=300):
          """Waits until `unit` is active and `url` answers. A unit that fails, or keeps
          restarting, fails the test at once with its journal, not with a bare time-out."""
          deadline = time.monotonic() + timeout
          while True:
              info = machine.get_unit_info(f"{unit}.service")
              state, sub = info["ActiveState"], info["SubState"]
              restarts = int(info.get("NRestarts") or 0)
              if state == "failed" or restarts >= 3:
                  raise AssertionError(
                      f"{unit} is {state} ({sub}) after {restarts} restarts; its journal:\n{journal(unit)}")
              if state == "active" and machine.execute(f"curl -sf {url}")[0] == 0:
                  return
              if time.monotonic() > deadline:
                  raise AssertionError(
                      f"{unit} did not answer {url} within {timeout} s ({state}, {sub}); "
                      f"its journal:\n{journal(unit)}")
              time.sleep(1)


      READY = {
          "dice-lab-die-service": "http://127.0.0.1:8402/healthz",
          "dice-lab-dice-roller": "http://127.0.0.1:8401/healthz",
          "dice-lab-frontend": "http://127.0.0.1:8400/healthz",
          "alloy": "http://127.0.0.1:12345/-/ready",
          "tempo": "http://127.0.0.1:3200/ready",
          "loki": "http://127.0.0.1:3100/ready",
          "prometheus": "http://127.0.0.1:9090/-/ready",
          "grafana": "http://127.0.0.1:3000/api/health",
      }

      machine.wait_for_unit("multi-user.target")
      for unit, url in READY.items():
          with subtest(f"{unit} is ready"):
              wait_ready(unit, url)

      with subtest("Grafana shows the anonymous visitor the provisioned dashboards"):
          eventually(f"the {len(DASHBOARDS)} dashboards in Grafana's search", grafana_dashboards)

      for source in DATASOURCES:
          with subtest(f"Grafana's {source['name']} data source answers its health check"):
              eventually(f"the {source['uid']} data source to be healthy",
                         lambda: datasource_healthy(source), timeout=60)

      with subtest("Prometheus scrapes the dice-roller"):
          eventually("the dice-roller target to be up", lambda: get(
              "http://127.0.0.1:9090/api/v1/query?query=up%7Bjob%3D%22dice-roller%22%7D"
          )["data"]["result"][0]["value"][1] == "1")
          before = rolls_total()

      with subtest("Roll Multiple through the frontend"):
          answer = get(f"http://127.0.0.1:8400/api/roll-async?die=fair&times={TIMES}")
          assert answer["count"] == TIMES, answer
          trace_id = answer["trace_id"]
          assert len(trace_id) == 32, answer

      with subtest("Tempo holds the trace with N roll spans"):
          def roll_spans():
              trace = get(f"http://127.0.0.1:3200/api/traces/{trace_id}")
              rolls = [span for span in tempo_spans(trace) if span.get("name") == "roll"]
              return len(rolls) == TIMES
          eventually(f"{TIMES} roll spans in Tempo", roll_spans)

      with subtest("Loki holds log lines with the trace id"):
          query = urllib.parse.quote(f'{{service=~".+"}} |= "{trace_id}"')
          def services_logging():
              result = get(f"http://127.0.0.1:3100/loki/api/v1/query_range?query={query}&limit=1000")
              streams = result["data"]["result"]
              lines = sum(len(stream["values"]) for stream in streams)
              services = {stream["stream"]["service"] for stream in streams}
              return lines >= TIMES and services == {"frontend", "dice-roller", "die-service"}
          eventually("log lines of all three services with the trace id", services_logging)

      with subtest("The frontend shows the trace and its log lines, read from Tempo and Loki"):
          def page_trace():
              trace = get(f"http://127.0.0.1:8400/api/traces/{trace_id}")
              rolls = [span for span in trace.get("spans", []) if span["name"] == "roll"]
              return len(rolls) == TIMES and trace["waiting_for"] == []
          eventually(f"the frontend's waterfall data with {TIMES} roll rows", page_trace)
          def page_logs():
              lines = get(f"http://127.0.0.1:8400/api/traces/{trace_id}/logs")["lines"]
              return len([line for line in lines if "roll_value" in line["fields"]]) == TIMES
          eventually(f"the frontend's {TIMES} roll log lines", page_logs)

      with subtest("Prometheus counts the rolls"):
          eventually("dice_rolls_total to grow by N", lambda: rolls_total() >= before + TIMES)
    '';
  }
