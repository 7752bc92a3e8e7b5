//! The contract's interfaces (`types`, `log`, `http`, `ec2`, `ssh`, `scripts`, `inventory`,
//! `undo`, `compute`), generated
//! once from the vendored `wit/` and shared by the three worlds' bindings (`with`), so that
//! a `HostError` or an `http::Request` is one type whichever world a plugin implements and
//! the mock host in [`testing`](crate::testing) serves them all.
//!
//! A component only imports what its code calls: the import-only world below adds nothing
//! to a planner that never calls `http::send`.

wit_bindgen::generate!({
    inline: "
        package cme:sdk;
        world capabilities {
            import cme:plugin/log@0.4.0;
            import cme:plugin/http@0.4.0;
            import cme:plugin/ec2@0.4.0;
            import cme:plugin/ssh@0.4.0;
            import cme:plugin/scripts@0.4.0;
            import cme:plugin/inventory@0.4.0;
            import cme:plugin/undo@0.4.0;
            import cme:plugin/compute@0.4.0;
        }
    ",
    path: "wit",
    world: "cme:sdk/capabilities",
    generate_all,
    additional_derives: [PartialEq],
});
