# The shape of workerd's Pyodide bundle: one message holding a list of modules.
# Field numbers as workerd reads them (see ../shared/NOTES.md "Running on workerd").
@0xc4a5a3c6b1d2e3f4;

struct Bundle {
  modules @0 :List(Module);
}

struct Module {
  name @0 :Text;
  union {
    src @1 :Data;
    wasm @4 :Data;
    data @5 :Data;
    json @6 :Text;
  }
  tsDeclaration @3 :Text;
  type @2 :ModuleType;
  compileCache @7 :Data;
}

enum ModuleType {
  bundle @0;
  builtin @1;
  internal @2;
}
