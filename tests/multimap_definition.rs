//! `MultimapTableDefinition::new` refuses an empty name, as redb's (and as
//! `TableDefinition::new` does): in a `const` that is a compile-time error,
//! at run time a panic.

use sluicedb::MultimapTableDefinition;

#[test]
#[should_panic(expected = "assertion failed: !name.is_empty()")]
fn an_empty_name_panics() {
    let name = String::new();
    let _definition: MultimapTableDefinition<u64, u64> = MultimapTableDefinition::new(&name);
}

#[test]
fn any_other_name_is_kept() {
    for name in ["a", " ", "名前", "with/slash"] {
        let definition: MultimapTableDefinition<u64, &str> = MultimapTableDefinition::new(name);
        assert_eq!(definition.to_string(), format!("{name}<u64, &str>"));
    }
}
