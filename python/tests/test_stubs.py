"""The type stubs (`_cairn.pyi`) describe the native module as it is."""

import ast
import inspect
import pathlib

import cairn._cairn as native

STUBS = pathlib.Path(native.__file__).with_name("_cairn.pyi")


def stub_names():
    tree = ast.parse(STUBS.read_text())
    names = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names[node.name] = {
                n.name for n in node.body if isinstance(n, ast.FunctionDef)
            } | {
                n.target.id for n in node.body
                if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
            }
        elif isinstance(node, ast.FunctionDef):
            names[node.name] = None
    return names


def test_every_public_name_has_a_stub_and_every_stub_exists():
    stubs = stub_names()
    public = {
        n for n in dir(native)
        if not n.startswith("__") and n not in {"_cairn"}
    }
    assert public - set(stubs) - {"__version__"} == set()
    for name, members in stubs.items():
        if name.startswith("_") and name != "_panic_for_tests":
            continue  # typing helpers of the stub file
        assert hasattr(native, name), name
        if members is None:
            continue
        cls = getattr(native, name)
        defined = {m for m in dir(cls) if not m.startswith("_")}
        stubbed = {m for m in members if not m.startswith("_")}
        assert defined - {"code", "args", "with_traceback", "add_note"} <= stubbed | {"code"}, name
        assert stubbed <= defined | {"code"}, name


def test_every_public_callable_has_a_docstring():
    for name in dir(native):
        if name.startswith("_"):
            continue
        obj = getattr(native, name)
        if callable(obj):
            assert inspect.getdoc(obj), name
