// figment's Jail returns its large error type by design.
#![allow(clippy::result_large_err)]

use std::path::PathBuf;
use std::time::Duration;

use figment::Jail;

use super::*;

fn load(files: &[&str], overrides: &Overrides) -> Result<Config, String> {
    let files: Vec<PathBuf> = files.iter().map(PathBuf::from).collect();
    Config::load(&files, overrides).map_err(|e| e.to_string())
}

#[test]
fn defaults_need_no_file() {
    Jail::expect_with(|_| {
        let config = load(&[], &Overrides::default()).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.listen, "0.0.0.0:2575");
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.max_frame_size, ByteSize(2 * 1024 * 1024));
        assert_eq!(config.frame_timeout, Duration::from_secs(60));
        assert_eq!(config.idle_timeout, Duration::from_secs(30));
        assert_eq!(config.dedupe_window, Duration::from_secs(86400));
        Ok(())
    });
}

#[test]
fn layers_files_then_environment_then_flags() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "a.toml",
            "listen = \"127.0.0.1:1000\"\nidle_timeout = \"5s\"\n[connectors.lab]\n[connectors.archive]\nplugin = \"file\"\nconfig = { dir = \"/tmp\" }",
        )?;
        jail.create_file("b.toml", "listen = \"127.0.0.1:2000\"\nmax_frame_size = \"64KiB\"\n[charset]\ndefault = \"8859/1\"")?;
        jail.set_env("SLUICE_DATA_DIR", "/env/data");
        jail.set_env("SLUICE_CHARSET__FORCE", "true");
        let config = load(&["a.toml", "b.toml"], &Overrides { data_dir: Some("/flag/data".into()), ..Overrides::default() }).unwrap();
        assert_eq!(config.listen, "127.0.0.1:2000", "later file wins");
        assert_eq!(config.idle_timeout, Duration::from_secs(5), "earlier file still applies");
        assert_eq!(config.max_frame_size, ByteSize(64 * 1024));
        assert_eq!(config.charset.default, crate::hl7::Charset::Latin1);
        assert!(config.charset.force, "environment applies");
        assert_eq!(config.data_dir, PathBuf::from("/flag/data"), "flags win over environment");
        assert_eq!(config.connector_names(), ["archive", "lab"]);
        assert_eq!(config.connectors["archive"].plugin.as_deref(), Some("file"));
        Ok(())
    });
}

#[test]
fn refuses_unknown_keys_and_bad_values_naming_the_key() {
    Jail::expect_with(|jail| {
        let cases = [
            ("listne = \"0.0.0.0:1\"", "listne"),
            ("frame_timeout = \"soon\"", "frame_timeout"),
            ("max_frame_size = \"2 parsecs\"", "max_frame_size"),
            ("max_frame_size = 10", "max_frame_size"),
            ("listen = \"nowhere\"", "listen"),
            ("idle_timeout = \"0s\"", "idle_timeout"),
            ("[charset]\ndefault = \"EBCDIC\"", "default"),
            ("[connectors.\"bad name\"]", "connectors.bad name"),
            ("[connectors.lab]\nretries = 3", "retries"),
            ("[log]\nlevel = \"[\"", "log.level"),
            ("[[validate]]\nplugin = \"a\"\nsettings = {}", "settings"),
            ("[[validate]]\nplugin = \"../evil\"", "validate[0].plugin"),
            ("[connectors.lab]\nroute = \"\"", "connectors.lab.route"),
            ("[plugins.x]\ndeadline = \"0s\"", "plugins.x.deadline"),
            ("[plugins.x]\nmemory_limit = \"1KiB\"", "plugins.x.memory_limit"),
            ("[plugins.x.allow]\nnetwork = true", "network"),
            ("[tls]\ncert = \"a.pem\"", "tls.cert"),
            ("[tls]\nlisten = \"0.0.0.0:2576\"\nkey = \"k.pem\"", "tls.cert"),
            ("[tls]\nlisten = \"0.0.0.0:2576\"\ncert = \"c.pem\"", "tls.key"),
            ("[tls]\nlisten = \"everywhere\"", "tls.listen"),
            ("[tls]\nmin_version = \"1.1\"", "min_version"),
            ("[tls]\ncertificate = \"c.pem\"", "certificate"),
            ("listen = \"off\"", "listen"),
            ("connect_timeout = \"0s\"", "connect_timeout"),
            ("[admin]\nlisten = \"0.0.0.0:2580\"", "admin.token"),
            ("[outbound_tls.\"lis\"]", "outbound_tls.\"lis\""),
            ("[outbound_tls.\"lis:6661\"]\ncert = \"c.pem\"", "outbound_tls.\"lis:6661\".key"),
            ("[interfaces.lab]\nvalidate = []", "interfaces.lab.listen"),
            ("[interfaces.lab]\nlisten = \"port 6661\"", "interfaces.lab.listen"),
            ("[interfaces.lab]\nlisten = \"127.0.0.1:6661\"\nlistne = 1", "listne"),
            ("[interfaces.lab]\nlisten = \"127.0.0.1:6661\"\nconnectors = [\"lis\"]", "interfaces.lab.connectors"),
            ("[interfaces.lab]\nlisten = \"127.0.0.1:6661\"\ntls = \"default\"", "interfaces.lab.tls"),
            ("[interfaces.lab]\nlisten = \"127.0.0.1:6661\"\ntls = \"other\"", "interfaces.lab.tls"),
            ("[interfaces.lab]\nlisten = \"127.0.0.1:6661\"\nidle_timeout = \"0s\"", "interfaces.lab.idle_timeout"),
            ("[interfaces.lab]\nlisten = \"127.0.0.1:6661\"\nmax_frame_size = 100", "interfaces.lab.max_frame_size"),
            ("[interfaces.lab]\nlisten = \"127.0.0.1:6661\"\nframing = { start = 0x1C }", "interfaces.lab.framing"),
            ("[interfaces.lab]\nlisten = \"127.0.0.1:6661\"\nframing = { end = 13 }", "interfaces.lab.framing"),
            ("[interfaces.lab]\nlisten = \"127.0.0.1:6661\"\nack_mode = \"sometimes\"", "ack_mode"),
            (
                "[interfaces.lab]\nlisten = \"127.0.0.1:6661\"\n[[interfaces.lab.senders]]\nsending_application = \"[\"",
                "interfaces.lab.senders[0].sending_application",
            ),
            ("[interfaces.lab]\nlisten = \"127.0.0.1:6661\"\n[[interfaces.lab.senders]]\non_reject = \"drop\"", "on_reject"),
            ("[interfaces.lab]\nlisten = \"127.0.0.1:6661\"\n[[interfaces.lab.validate]]\nplugin = \"../x\"", "interfaces.lab.validate[0].plugin"),
            ("[interfaces.\"my lab\"]\nlisten = \"127.0.0.1:6661\"", "interfaces.my lab"),
            ("listen = \"127.0.0.1:6661\"\n[interfaces.lab]\nlisten = \"127.0.0.1:6661\"", "interfaces.lab.listen"),
            ("listen = \"off\"\n[interfaces.default]\nack_mode = \"none\"", "listen"),
        ];
        for (i, (text, key)) in cases.iter().enumerate() {
            let file = format!("bad{i}.toml");
            jail.create_file(&file, text)?;
            let err = load(&[&file], &Overrides::default()).unwrap_err();
            assert!(err.contains(key), "{text:?} gave {err}");
        }
        let err = load(&["missing.toml"], &Overrides::default()).unwrap_err();
        assert!(err.contains("missing.toml"), "{err}");
        Ok(())
    });
}

#[test]
fn environment_typos_are_refused_too() {
    Jail::expect_with(|jail| {
        jail.set_env("SLUICE_IDLE_TIMOUT", "5s");
        let err = load(&[], &Overrides::default()).unwrap_err();
        assert!(err.contains("idle_timout"), "{err}");
        Ok(())
    });
}

#[test]
fn kubernetes_service_variables_are_not_configuration() {
    Jail::expect_with(|jail| {
        for (key, value) in [
            ("SLUICE_SERVICE_HOST", "10.0.0.7"),
            ("SLUICE_SERVICE_PORT", "2575"),
            ("SLUICE_SERVICE_PORT_MLLP_TLS", "2576"),
            ("SLUICE_PORT", "tcp://10.0.0.7:2575"),
            ("SLUICE_PORT_2575_TCP", "tcp://10.0.0.7:2575"),
            ("SLUICE_PORT_2575_TCP_ADDR", "10.0.0.7"),
            ("SLUICE_ADMIN_SERVICE_HOST", "10.0.0.8"),
            ("SLUICE_ADMIN_PORT_2580_TCP_PORT", "2580"),
        ] {
            jail.set_env(key, value);
        }
        jail.set_env("SLUICE_ADMIN__TOKEN", "t0ken");
        let config = load(&[], &Overrides::default()).unwrap();
        assert_eq!(config.admin.token.as_deref(), Some("t0ken"), "real keys still apply");
        jail.set_env("SLUICE_PORTS", "1");
        assert!(load(&[], &Overrides::default()).unwrap_err().contains("ports"), "anything else is still refused");
        Ok(())
    });
}

#[test]
fn reads_validators_routes_and_plugin_policies() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "p.toml",
            "[[validate]]\nplugin = \"require-fields\"\nconfig = { paths = [\"PID-3\"] }\n[[validate]]\nplugin = \"obx\"\n\
             [connectors.lab]\nroute = \"match\"\nroute_config = { types = [\"ORU^R01\"] }\n\
             [plugins.obx]\ndeadline = \"1s\"\nmemory_limit = \"16MiB\"\nkeep_state = true\nallow = { env = [\"TZ\"] }\n",
        )?;
        let config = load(&["p.toml"], &Overrides::default()).unwrap();
        let plugins: Vec<&str> = config.validate.iter().map(|u| u.plugin.as_str()).collect();
        assert_eq!(plugins, ["require-fields", "obx"], "validators keep their order");
        assert_eq!(serde_json::to_string(&config.validate[0].config).unwrap(), r#"{"paths":["PID-3"]}"#);
        assert_eq!(config.connectors["lab"].route.as_deref(), Some("match"));
        let obx = config.plugin_policy("obx");
        assert_eq!((obx.deadline, obx.memory_limit.0, obx.keep_state), (Duration::from_secs(1), 16 << 20, true));
        assert_eq!(obx.allow.env, ["TZ"]);
        assert_eq!(config.plugin_policy("require-fields"), PluginPolicy::default(), "nothing is granted by default");
        assert!(PluginPolicy::default().allow.env.is_empty() && PluginPolicy::default().allow.read_dirs.is_empty());
        Ok(())
    });
}

#[test]
fn tls_listener_beside_or_instead_of_plain() {
    Jail::expect_with(|jail| {
        jail.create_file("t.toml", "listen = \"off\"\nconnect_timeout = \"3s\"\npre_shutdown_delay = \"5s\"\nlog_phi = true\n[tls]\nlisten = \"127.0.0.1:2576\"\ncert = \"c.pem\"\nkey = \"k.pem\"\nmin_version = \"1.3\"\n[outbound_tls.\"LIS.example:6661\"]\nca = \"ca.pem\"\n")?;
        let config = load(&["t.toml"], &Overrides::default()).unwrap();
        assert!(config.listen_addr().is_none(), "plain listener off");
        assert_eq!(config.tls_listen_addr(), Some("127.0.0.1:2576".parse().unwrap()));
        assert_eq!(config.tls.min_version, TlsVersion::Tls13);
        assert_eq!((config.connect_timeout, config.pre_shutdown_delay, config.log_phi), (Duration::from_secs(3), Duration::from_secs(5), true));
        assert_eq!(config.outbound_tls["LIS.example:6661"].ca, Some(PathBuf::from("ca.pem")));
        let defaults = Config::default();
        assert_eq!(
            (defaults.connect_timeout, defaults.pre_shutdown_delay, defaults.log_phi, defaults.tls.listen),
            (Duration::from_secs(10), Duration::ZERO, false, None)
        );
        Ok(())
    });
}

#[test]
fn interfaces_inherit_the_top_level_limits_and_the_default_interface_is_the_top_level() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "i.toml",
            "listen = \"127.0.0.1:2575\"\nidle_timeout = \"7s\"\nmax_connections = 9\n\
             [[validate]]\nplugin = \"require-fields\"\n\
             [connectors.lis]\n[connectors.archive]\n\
             [interfaces.default]\nack_mode = \"original\"\n\
             [interfaces.lab]\nlisten = \"127.0.0.1:6661\"\nconnectors = [\"lis\"]\nmax_connections = 2\nframing = { trailing_cr = false }\n\
             [[interfaces.lab.senders]]\nsending_application = \"OLDDEV*\"\non_reject = \"close\"\n",
        )?;
        let config = load(&["i.toml"], &Overrides::default()).unwrap();
        let specs = config.interface_specs().unwrap();
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["default", "lab"]);
        let (default, lab) = (&specs[0], &specs[1]);
        assert_eq!(default.listeners, [ListenerSpec { addr: "127.0.0.1:2575".parse().unwrap(), tls: false }]);
        assert_eq!(default.validate[0].plugin, "require-fields", "the top-level validators");
        assert_eq!(default.connectors, ["archive", "lis"], "every connector");
        assert_eq!(default.ack.ack_mode, AckModeSetting::Original);
        assert_eq!((default.max_connections, default.idle_timeout), (9, Duration::from_secs(7)));
        assert!(lab.validate.is_empty(), "a named interface has only its own validators");
        assert_eq!(lab.connectors, ["lis"]);
        assert_eq!((lab.max_connections, lab.idle_timeout), (2, Duration::from_secs(7)), "own limit, inherited timeout");
        assert!(!lab.framing.trailing_cr && lab.framing.start == 0x0B);
        assert_eq!(lab.ack.senders[0].on_reject, Some(OnNack::Close));
        assert_eq!(lab.ack.senders[0].sending_facility, "*");
        let uses: Vec<String> = config.validator_uses().into_iter().map(|(key, _)| key).collect();
        assert_eq!(uses, ["validate[0].plugin"]);
        Ok(())
    });
}
