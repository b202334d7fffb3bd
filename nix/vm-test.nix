# A NixOS VM with `services.dice-lab` and its observability stack: one "Roll Multiple" through the
# frontend must show up as a trace in Tempo with N `roll` spans, as log lines in Loki that carry
# the trace id, and as growth of `dice_rolls_total` in Prometheus.
{
  pkgs,
  module,
}:
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


    def get(url):
        return json.loads(machine.succeed(f"curl -sf '{url}'"))


    def eventually(what, check, timeout=180):
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = check()
                if value:
                    return value
            except Exception as error:
                machine.log(f"still waiting for {what}: {error}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(2)


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
