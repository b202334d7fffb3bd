//! The table of the lab's parts ([`parts::Part`]) against every place that keeps its own
//! literals: each service's settings, the NixOS module and its VM test, and the contract in the
//! docs. (`observability.rs` checks the backends' files against it.)

use clap::CommandFactory as _;
use lab_tests::repo;
use parts::Part;

/// The default of a setting, and its environment variable.
fn setting(command: &clap::Command, id: &str) -> (String, String) {
    let arg = command
        .get_arguments()
        .find(|a| a.get_id() == id)
        .unwrap_or_else(|| panic!("{} has no setting {id}", command.get_name()));
    let default = arg
        .get_default_values()
        .first()
        .map(|v| v.to_string_lossy().into_owned())
        .unwrap_or_default();
    let env = arg
        .get_env()
        .map(|v| v.to_string_lossy().into_owned())
        .unwrap_or_default();
    (default, env)
}

#[test]
fn services_listen_and_find_each_other_where_the_table_says() {
    let commands = [
        (Part::DieService, die_service::Settings::command()),
        (Part::DiceRoller, dice_roller::Settings::command()),
        (Part::Frontend, frontend::Settings::command()),
    ];
    for (part, command) in &commands {
        let (listen, env) = setting(command, "listen");
        assert_eq!(listen, part.default_listen().to_string(), "{part}");
        assert_eq!(
            env,
            format!("{}_LISTEN", part.env_prefix().unwrap()),
            "{part}"
        );
    }
    for (part, command) in &commands[1..] {
        let (url, _) = setting(command, "die_service_url");
        assert_eq!(url, Part::DieService.local_url(), "{part}");
    }
    let (url, _) = setting(&commands[2].1, "dice_roller_url");
    assert_eq!(url, Part::DiceRoller.local_url());
}

#[test]
fn the_nix_module_and_its_vm_test_use_the_tables_ports() {
    let module = repo::read("nixos-modules/dice-lab.nix");
    for (part, option) in [
        (Part::Frontend, "frontend"),
        (Part::DiceRoller, "diceRoller"),
        (Part::DieService, "dieService"),
    ] {
        let declared = format!("serviceOptions \"{}\" {}", part.name(), part.port());
        assert!(
            module.contains(&declared),
            "services.dice-lab.{option}.port does not default to {}",
            part.port()
        );
    }
    let vm = repo::read("nix/vm-test.nix");
    // The NixOS module runs the real backends, never the store.
    for part in Part::all().filter(|p| *p != Part::Store) {
        let unit = if part.is_service() {
            format!("dice-lab-{part}")
        } else {
            part.name().to_owned()
        };
        let ready = format!("\"{unit}\": \"{}\"", part.ready_url());
        assert!(vm.contains(&ready), "the VM test does not wait for {ready}");
    }
}

#[test]
fn the_contract_lists_the_tables_ports() {
    let contract = repo::read("docs/contract.md");
    for part in Part::SERVICES {
        let row = format!("| {part} | {} |", part.port());
        assert!(contract.contains(&row), "docs/contract.md lacks `{row}`");
    }
}
