"""Each kit (and shared/) imports without the other kits' extras: heavy modules are blocked in a subprocess."""

import subprocess
import sys
import textwrap

import pytest

# top-level modules each extra brings; a kit may import only its own extras' modules
EXTRA_MODULES = {
    "recsys_kit": {"recbole", "scipy", "pandas", "networkx", "sentence_transformers", "peft"},
    "llm_dynamics_kit": {"accelerate", "tokenizers", "safetensors"},
    "safety_kit": {"sklearn", "sentence_transformers", "PIL"},
    "agents_kit": {"fastapi", "uvicorn", "websockets", "pydantic", "httpx"},
}
ALL_HEAVY = set().union(*EXTRA_MODULES.values()) | {"torch", "transformers"}
ALLOWED = {
    "shared": set(),
    "recsys_kit": EXTRA_MODULES["recsys_kit"] | {"torch", "transformers", "sklearn"},
    "llm_dynamics_kit": EXTRA_MODULES["llm_dynamics_kit"] | {"torch", "transformers"},
    "safety_kit": EXTRA_MODULES["safety_kit"] | {"torch", "transformers"},
    "agents_kit": EXTRA_MODULES["agents_kit"],
}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_without_other_extras(package):
    blocked = sorted(ALL_HEAVY - ALLOWED[package])
    code = textwrap.dedent(f"""
        import importlib, importlib.abc, sys
        BLOCKED = set({blocked!r})
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"blocked for this test: {{name}}")
                return None
        sys.meta_path.insert(0, Block())
        importlib.import_module({package!r})
        if {package!r} != "shared":
            importlib.import_module({package!r} + ".cli")
        else:
            import shared.cli, shared.results, shared.report, shared.config, shared.benchmarks
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
