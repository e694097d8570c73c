"""The type stub src/elasticzo/_core.pyi names exactly what elasticzo._core exports, class by class, and the
package ships it with its py.typed marker."""

import ast
import inspect
from importlib import resources

from elasticzo import _core

DUNDERS = {"__init__", "__len__", "__getitem__"}


def _stub():
    tree = ast.parse(resources.files("elasticzo").joinpath("_core.pyi").read_text())
    top, classes = set(), {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            top.add(node.name)
            classes[node.name] = {n.name if isinstance(n, ast.FunctionDef) else n.target.id
                                  for n in node.body if isinstance(n, (ast.FunctionDef, ast.AnnAssign))}
        elif isinstance(node, ast.FunctionDef):
            top.add(node.name)
        elif isinstance(node, ast.AnnAssign):
            top.add(node.target.id)
    return {n for n in top if not n.startswith("_") or n == "__version__"}, classes


def _public(names):
    return {n for n in names if not n.startswith("_") or n in DUNDERS}


def test_every_module_name_is_in_the_stub_and_nothing_else():
    top, _ = _stub()
    exported = {n for n in dir(_core) if not n.startswith("_")} | {"__version__"}
    assert exported - top == set(), f"missing from _core.pyi: {sorted(exported - top)}"
    assert top - exported == set(), f"in _core.pyi but not in _core: {sorted(top - exported)}"


def test_every_class_member_is_in_the_stub():
    _, classes = _stub()
    for name, cls in inspect.getmembers(_core, inspect.isclass):
        own = _public(vars(cls))
        if "__init__" in own and not (cls.__init__.__doc__ or "").startswith("__init__("):
            own.discard("__init__")  # no pybind11 constructor (Layer): the stub leaves it out too
        stub = _public(classes.get(name, set()))
        assert own - stub == set(), f"_core.{name} members missing from _core.pyi: {sorted(own - stub)}"
        assert stub - own == set(), f"_core.{name} members in _core.pyi but not in _core: {sorted(stub - own)}"


def test_package_ships_the_stub_and_marker():
    package = resources.files("elasticzo")
    assert package.joinpath("py.typed").is_file()
    assert package.joinpath("_core.pyi").is_file()
