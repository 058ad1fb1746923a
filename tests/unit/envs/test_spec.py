"""Resolving the environment an artifact asks for, from each file that can describe one."""

from __future__ import annotations

import hashlib

import pytest

from berth.envs import EnvSpec, resolve_spec
from berth.envs.spec import HF_ENGINE_REQUIREMENTS
from tests.support.envs import OWN, MakeArtifact, refusal, runtime_yaml, write_wheel


def _mlmodel(python: str = f"{OWN}.7", mlflow: str = "2.17.0") -> str:
    return (
        f"mlflow_version: {mlflow}\n"
        "flavors:\n"
        "  python_function:\n"
        "    loader_module: mlflow.sklearn\n"
        f"    python_version: {python}\n"
    )


def _python_env(*dependencies: str, python: str = f"{OWN}.7") -> str:
    listed = "".join(f"- {line}\n" for line in dependencies)
    return f"python: {python}\nbuild_dependencies:\n- pip==24.0\ndependencies:\n{listed}"


def test_mlflow_python_env_includes_requirements_txt(make_artifact: MakeArtifact) -> None:
    root = make_artifact(
        {
            "MLmodel": _mlmodel(),
            "python_env.yaml": _python_env("-r requirements.txt"),
            "requirements.txt": "mlflow==2.17.0\nscikit-learn==1.4.0\ncloudpickle==3.0.0\n",
        }
    )
    assert resolve_spec(root, "mlflow") == EnvSpec(
        OWN, ("mlflow==2.17.0", "scikit-learn==1.4.0", "cloudpickle==3.0.0")
    )


def test_mlflow_without_mlflow_requirement_gets_skinny_pinned_to_mlmodel(
    make_artifact: MakeArtifact,
) -> None:
    root = make_artifact(
        {
            "MLmodel": _mlmodel(mlflow="2.16.2"),
            "python_env.yaml": _python_env("numpy==2.1.0", "-r requirements.txt"),
            "requirements.txt": "pandas==2.2.3\n",
        }
    )
    spec = resolve_spec(root, "mlflow")
    assert spec == EnvSpec(OWN, ("numpy==2.1.0", "pandas==2.2.3", "mlflow-skinny==2.16.2"))


def test_any_spelling_of_an_mlflow_package_counts(make_artifact: MakeArtifact) -> None:
    root = make_artifact(
        {"MLmodel": _mlmodel(), "requirements.txt": "MLflow_Skinny[databricks]>=2.16\n"}
    )
    assert resolve_spec(root, "mlflow") == EnvSpec(
        OWN, ("MLflow_Skinny[databricks]>=2.16", "numpy", "pandas")
    )


def test_skinny_mlflow_brings_what_pyfunc_imports(make_artifact: MakeArtifact) -> None:
    root = make_artifact({"MLmodel": _mlmodel(), "requirements.txt": "scikit-learn==1.4.0\n"})
    assert resolve_spec(root, "mlflow") == EnvSpec(
        OWN, ("scikit-learn==1.4.0", "mlflow-skinny==2.17.0", "numpy", "pandas")
    )


def test_mlflow_conda_yaml_gives_python_and_pip_section(make_artifact: MakeArtifact) -> None:
    conda = f"""
        name: mlflow-env
        channels: [conda-forge]
        dependencies:
          - python={OWN}.7
          - pip<=24.0
          - pip:
            - mlflow==2.17.0
            - scikit-learn==1.4.0
        """
    root = make_artifact({"MLmodel": _mlmodel(python="3.99.1"), "conda.yaml": conda})
    assert resolve_spec(root, "mlflow") == EnvSpec(OWN, ("mlflow==2.17.0", "scikit-learn==1.4.0"))


def test_mlflow_requirements_alone_take_python_from_mlmodel(make_artifact: MakeArtifact) -> None:
    root = make_artifact({"MLmodel": _mlmodel(), "requirements.txt": "mlflow==2.17.0\n"})
    assert resolve_spec(root, "mlflow") == EnvSpec(OWN, ("mlflow==2.17.0",))


def test_mlflow_model_without_environment_files_runs_in_berths_env(
    make_artifact: MakeArtifact,
) -> None:
    assert resolve_spec(make_artifact({"MLmodel": _mlmodel()}), "mlflow") is None


def test_score_py_requirements_txt(make_artifact: MakeArtifact) -> None:
    root = make_artifact(
        {"runtime.yaml": runtime_yaml(f"{OWN}.2"), "requirements.txt": "six==1.16.0\n"}
    )
    assert resolve_spec(root, "score_py") == EnvSpec(OWN, ("six==1.16.0",))


def test_score_py_environment_yaml_pip_section(make_artifact: MakeArtifact) -> None:
    environment = f"dependencies:\n- conda-forge::python={OWN}\n- pip\n- pip: [six==1.16.0]\n"
    root = make_artifact({"environment.yaml": environment})
    assert resolve_spec(root, "score_py") == EnvSpec(OWN, ("six==1.16.0",))


@pytest.mark.parametrize(
    "files",
    [
        {},
        {"runtime.yaml": runtime_yaml()},
        {"requirements.txt": "# no third-party packages needed\n"},
        # An explicit (empty) requirements.txt says how to build, so the conda pack is moot.
        {"runtime.yaml": runtime_yaml(env_path="oci://b@ns/envs/x"), "requirements.txt": ""},
    ],
)
def test_score_py_asking_for_nothing_runs_in_berths_env(
    make_artifact: MakeArtifact, files: dict[str, str]
) -> None:
    assert resolve_spec(make_artifact(files), "score_py") is None


def test_requirement_lines_are_normalised(make_artifact: MakeArtifact) -> None:
    requirements = """
        # pinned by hand
        six==1.16.0   # the one we test with

        -r more/extra.txt
        requests[socks] >= 2.31 ; python_version >= "3.8" \\
            --hash=sha256:aaaa
        six==1.16.0
        --index-url https://pypi.org/simple
        """
    extra = "attrs==24.2.0\n-r ../requirements.txt\nsix==1.16.0\n"
    root = make_artifact({"requirements.txt": requirements, "more/extra.txt": extra})
    spec = resolve_spec(root, "score_py")
    assert spec == EnvSpec(
        OWN,
        (
            "six==1.16.0",
            "attrs==24.2.0",
            'requests[socks] >= 2.31 ; python_version >= "3.8" --hash=sha256:aaaa',
        ),
    )


def test_constraints_file_is_kept_apart(make_artifact: MakeArtifact) -> None:
    root = make_artifact(
        {"requirements.txt": "-c constraints.txt\nsix\n", "constraints.txt": "six<1.17\n"}
    )
    assert resolve_spec(root, "score_py") == EnvSpec(OWN, ("six",), ("six<1.17",))


@pytest.mark.parametrize(
    ("line", "condition"),
    [
        ("wheels/tinypkg-0.1-py3-none-any.whl", ""),
        ("./wheels/../wheels/tinypkg-0.1-py3-none-any.whl --hash=sha256:0123", ""),
        ("tinypkg@file:wheels/tinypkg-0.1-py3-none-any.whl", ""),
        (
            'tinypkg @ ./wheels/tinypkg-0.1-py3-none-any.whl ; python_version >= "3.8"',
            ' ; python_version >= "3.8"',
        ),
    ],
)
def test_wheel_inside_the_artifact_is_pinned_by_content(
    make_artifact: MakeArtifact, line: str, condition: str
) -> None:
    root = make_artifact({"requirements.txt": line})
    wheel = write_wheel(root / "wheels" / "tinypkg-0.1-py3-none-any.whl")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    spec = resolve_spec(root, "score_py")
    assert spec is not None and spec.uses_artifact_files
    assert spec.requirements == (
        f"./wheels/tinypkg-0.1-py3-none-any.whl{condition} --hash=sha256:{digest}",
    )
    write_wheel(wheel, value="2")
    changed = resolve_spec(root, "score_py")
    assert changed is not None and changed.hash() != spec.hash()


HF_FILES = {"config.json": '{"model_type": "llama"}', "tokenizer.json": "{}"}


@pytest.mark.parametrize(
    ("requirements", "expected"),
    [
        (None, EnvSpec(OWN, HF_ENGINE_REQUIREMENTS)),
        (
            "sentencepiece==0.2.0\n-c constraints.txt\n",
            EnvSpec(OWN, (*HF_ENGINE_REQUIREMENTS, "sentencepiece==0.2.0"), ("numpy<3",)),
        ),
        # A package the folder pins is taken as it pins it, not twice.
        (
            "Transformers==4.57.1\ntorch>=2.8\n",
            EnvSpec(OWN, ("accelerate", "Transformers==4.57.1", "torch>=2.8")),
        ),
        # vLLM serves the model then, with the torch and transformers it depends on.
        ("vllm==0.11.0\n", EnvSpec(OWN, ("vllm==0.11.0",))),
    ],
)
def test_a_hugging_face_folder_gets_the_gpu_engine_and_its_own_requirements(
    make_artifact: MakeArtifact, requirements: str | None, expected: EnvSpec
) -> None:
    files = dict(HF_FILES, **({} if requirements is None else {"requirements.txt": requirements}))
    root = make_artifact({**files, "constraints.txt": "numpy<3\n"})
    assert resolve_spec(root, "huggingface") == expected


def test_a_hugging_face_folders_requirements_are_checked(make_artifact: MakeArtifact) -> None:
    root = make_artifact({**HF_FILES, "requirements.txt": "-e ./src\n"})
    assert "editable mode" in refusal(root, "huggingface")


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {
                "requirements.txt": "mlflow==2.17.0\n-c constraints.txt\n",
                "constraints.txt": "numpy<3\n",
            },
            EnvSpec(OWN, ("mlflow==2.17.0",), ("numpy<3",)),
        ),
        # Nothing else describes a server of one's own: a conda file or an MLmodel is data.
        ({"conda.yaml": "dependencies:\n- pip: [six]\n", "MLmodel": "flavors: {}\n"}, None),
        ({"requirements.txt": "# nothing beyond the standard library\n"}, None),
        ({}, None),
    ],
)
def test_a_custom_container_runs_in_what_its_requirements_txt_asks_for(
    make_artifact: MakeArtifact, files: dict[str, str], expected: EnvSpec | None
) -> None:
    assert resolve_spec(make_artifact(files), "container") == expected


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"runtime.yaml": runtime_yaml(env_path="oci://bucket@ns/conda_environments/x")},
            "list your packages in requirements.txt (or conda.yaml's pip section)",
        ),
        (
            {"conda.yaml": "dependencies:\n- python=3.11\n- numpy=1.26\n- pip\n- cudatoolkit\n"},
            "conda packages berth cannot install: numpy=1.26, cudatoolkit",
        ),
        ({"conda.yaml": "dependencies:\n- pip: [six]\n- {r: [x]}\n"}, "section 'r'"),
        ({"requirements.txt": "-e ./src\n"}, "editable mode"),
        (
            {"requirements.txt": "--index-url https://pkgs.example.com/simple\nsix\n"},
            "names a package index berth does not install from",
        ),
        ({"requirements.txt": "--pre\nsix\n"}, "the pip option '--pre' is not supported"),
        ({"requirements.txt": "../outside.whl\n"}, "points outside the artifact"),
        ({"requirements.txt": "-r /etc/hostname\n"}, "points outside the artifact"),
        ({"requirements.txt": "pkg @ file:///opt/pkg-1.0.whl\n"}, "points outside the artifact"),
        ({"requirements.txt": "-r missing.txt\n"}, "names a file the artifact does not have"),
        ({"requirements.txt": "./src\n", "src/setup.py": ""}, "names a directory"),
        ({"requirements.txt": "git+https://github.com/a/b.git\n"}, "version-control"),
        ({"runtime.yaml": runtime_yaml("three")}, "write a Python version such as '3.11'"),
    ],
)
def test_environments_berth_cannot_build_are_refused_with_a_way_out(
    make_artifact: MakeArtifact, files: dict[str, str], expected: str
) -> None:
    assert expected in refusal(make_artifact(files))


def test_unquoted_python_version_is_refused(make_artifact: MakeArtifact) -> None:
    root = make_artifact(
        {"MLmodel": _mlmodel(), "python_env.yaml": _python_env("six", python="3.10")}
    )
    assert "must be a quoted string such as '3.11'" in refusal(root, "mlflow")


def test_hash_is_stable_and_covers_every_field() -> None:
    spec = EnvSpec("3.11", ("six==1.16.0",))
    assert spec.hash("linux-x86_64") == EnvSpec("3.11", ("six==1.16.0",)).hash("linux-x86_64")
    # A change here re-keys every cache: it must be deliberate (then bump SPEC_FORMAT).
    assert spec.hash("linux-x86_64") == (
        "7b33fb85b04ea04653399f1207c66eac303b0bc611f209ce4a51bc3bc87d51f6"
    )
    others = {
        EnvSpec("3.12", ("six==1.16.0",)).hash("linux-x86_64"),
        EnvSpec("3.11", ("six==1.15.0",)).hash("linux-x86_64"),
        EnvSpec("3.11", ("six==1.16.0",), ("six<2",)).hash("linux-x86_64"),
        spec.hash("darwin-arm64"),
    }
    assert len(others) == 4 and spec.hash("linux-x86_64") not in others


def test_spec_round_trips_through_json() -> None:
    spec = EnvSpec("3.11", ("six==1.16.0", "attrs"), ("six<2",))
    assert EnvSpec.from_json(spec.to_json()) == spec
