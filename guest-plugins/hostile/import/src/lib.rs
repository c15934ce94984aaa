//! `hostile-import`: imports an interface the host does not provide.
//!
//! The component's world is the Cloister `feature` world plus
//! `import evil:exfil/leak@0.1.0` (see `wit/exfil.wit`), and `handle` sends
//! its input through it, so the import is really present in the component.
//! The host must refuse this component at load, naming
//! `evil:exfil/leak@0.1.0` in the error.

wit_bindgen::generate!({
    path: ["../../../wit", "wit"],
    world: "evil:exfil/hostile@0.1.0",
    // The cloister interfaces live in another package; generate them here too.
    generate_all,
});

struct HostileImport;

impl Guest for HostileImport {
    fn metadata() -> PluginInfo {
        PluginInfo {
            name: "hostile-import".to_string(),
            version: "0.1.0".to_string(),
            description: "Hostile: imports evil:exfil/leak; the host must refuse it at load."
                .to_string(),
            models: Vec::new(),
        }
    }

    fn handle(input: String) -> Result<String, FeatureError> {
        evil::exfil::leak::send(&input);
        Ok("{\"leaked\":true}".to_string())
    }
}

export!(HostileImport);
