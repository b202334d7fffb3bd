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


    def spans(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "spans" and isinstance(value, list):
                    yield from value
                else:
                    yield from spans(value)
        elif isinstance(node, list):
            for item in node:
                yield from spans(item)


    def rolls_total():
        result = get("http://127.0.0.1:9090/api/v1/query?query=sum(dice_rolls_total)")
        samples = result["data"]["result"]
        return float(samples[0]["value"][1]) if samples else 0.0


    machine.wait_for_unit("multi-user.target")
    for unit in ["dice-lab-die-service", "dice-lab-dice-roller", "dice-lab-frontend",
                 "alloy", "tempo", "loki", "prometheus", "grafana"]:
        machine.wait_for_unit(f"{unit}.service")
    for url in ["http://127.0.0.1:8400/healthz", "http://127.0.0.1:8401/healthz",
                "http://127.0.0.1:8402/healthz", "http://127.0.0.1:12345/-/ready",
                "http://127.0.0.1:3200/ready", "http://127.0.0.1:3100/ready",
                "http://127.0.0.1:9090/-/ready", "http://127.0.0.1:3000/api/health"]:
        machine.wait_until_succeeds(f"curl -sf {url}", timeout=300)

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
            rolls = [span for span in spans(trace) if span.get("name") == "roll"]
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

    with subtest("Prometheus counts the rolls"):
        eventually("dice_rolls_total to grow by N", lambda: rolls_total() >= before + TIMES)
  '';
}
