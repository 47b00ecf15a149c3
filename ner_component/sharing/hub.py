"""Push a packaged model to the Hugging Face Hub, as spacy-huggingface-hub does.

The upload folder holds what `spacy huggingface-hub push` uploads: the pipeline
files from the wheel at the top (config.cfg, meta.json, the components, the card as
README.md, the training curve), the pipeline's code files, and the wheel itself as
`<package>-any-py3-none-any.whl`, so that `pip install` of its Hub URL works. It is
staged in `packages/<package>-<version>/hub/` first: a dry run stops there.

The upload is one `HfApi.upload_folder` commit: the repo gets all files or none.
"""
import re
import shutil
import zipfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Dict, Optional

from wasabi import msg

from ner_component.sharing.package import ShareError
from ner_component.util import PathLike, atomic_dir

if TYPE_CHECKING:
    from huggingface_hub import HfApi

HUB_DIRNAME = "hub"
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
NO_TOKEN = (
    "no Hugging Face token: set HF_TOKEN or run `huggingface-cli login`, "
    "or stage the upload without pushing with --vars.dry_run true"
)


def check_repo_id(repo_id: str) -> str:
    """A Hub model repo id, `<user or org>/<name>`; raises ShareError otherwise."""
    if not REPO_ID.match(repo_id or ""):
        raise ShareError(
            f"hub repo '{repo_id}' is not '<user or org>/<name>': set it with --vars.hub_repo someone/en_wikiann_trf"
        )
    return repo_id


def find_wheel(packages_dir: PathLike, package: str, version: str) -> Path:
    """The wheel `spacy package` built for `<package>-<version>` under `packages_dir`."""
    dist = Path(packages_dir) / f"{package}-{version}" / "dist"
    wheels = sorted(dist.glob(f"{re.sub('_+', '_', package)}-{version}-*.whl"))
    if not wheels:
        raise ShareError(f"no wheel of {package} {version} in {dist}: run the package step first")
    return wheels[-1]


def stage_upload(wheel: PathLike, dest: Optional[PathLike] = None) -> Path:
    """Write the folder to upload for a model wheel, replacing an older one.

    wheel (PathLike): The model wheel (`packages/<package>-<version>/dist/*.whl`).
    dest (Optional[PathLike]): The folder; default `packages/<package>-<version>/hub`.
    RETURNS (Path): The folder.
    """
    wheel = Path(wheel)
    package, version = wheel.name.split("-")[:2]
    dest = Path(dest) if dest is not None else wheel.parent.parent / HUB_DIRNAME
    data_prefix = f"{package}-{version}"
    with atomic_dir(dest) as tmp, zipfile.ZipFile(wheel) as whl:
        for name in whl.namelist():
            parts = PurePosixPath(name).parts
            # the package's own folder only (not .dist-info), and not its __init__.py
            if len(parts) < 2 or parts[0] != package or name.endswith("/") or parts[1:] == ("__init__.py",):
                continue
            rel = parts[2:] if parts[1] == data_prefix else parts[1:]
            if not rel or ".." in rel:
                continue
            target = tmp.joinpath(*rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(whl.read(name))
        shutil.copyfile(wheel, tmp / f"{package}-any-py3-none-any.whl")
    return dest


def push(
    folder: PathLike,
    repo_id: str,
    private: bool = False,
    commit_message: str = "Update spaCy pipeline",
    api: Optional["HfApi"] = None,
) -> Dict[str, Any]:
    """Upload a staged folder to a Hub model repo, creating the repo if needed.

    Nothing is created before the token and the network are checked; an upload that
    fails in a repo this call created deletes that (empty) repo again, and the error
    says what is left.

    folder (PathLike): The staged folder (`stage_upload`).
    repo_id (str): `<user or org>/<name>`.
    private (bool): Create the repo private (an existing repo keeps its visibility).
    commit_message (str): The commit message.
    api (Optional[HfApi]): The client; default `HfApi()` with the stored token.
    RETURNS (Dict[str, Any]): The repo URL, the wheel URL and the commit.
    """
    import huggingface_hub

    check_repo_id(repo_id)
    folder = Path(folder)
    if api is None:
        token = huggingface_hub.get_token()
        if not token:
            raise ShareError(NO_TOKEN)
        api = huggingface_hub.HfApi(token=token)
    try:
        user = api.whoami()
    except Exception as err:  # no network, offline mode, a bad token: all end here, before any upload
        raise ShareError(
            f"can't reach the Hugging Face Hub with this token ({_one_line(err)}): check the network "
            "and HF_TOKEN / `huggingface-cli login`, or stage only with --vars.dry_run true"
        ) from None
    msg.info(f"Pushing {folder} to {repo_id} as {user.get('name', '?')}")
    try:
        existed = api.repo_exists(repo_id, repo_type="model")
        repo_url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    except Exception as err:
        raise ShareError(f"can't create the Hub repo {repo_id}: {_one_line(err)}; nothing was uploaded") from None
    try:
        commit = api.upload_folder(
            repo_id=repo_id, repo_type="model", folder_path=str(folder), path_in_repo="", commit_message=commit_message
        )
    except Exception as err:
        left = "the repo existed before and its files are unchanged (the upload is one commit)"
        if not existed:
            try:
                api.delete_repo(repo_id, repo_type="model")
                left = "the empty repo this push created was deleted again"
            except Exception as delete_err:
                left = f"the empty repo this push created is still there ({_one_line(delete_err)}): delete it or push again"
        raise ShareError(f"upload to {repo_id} failed: {_one_line(err)}; {left}") from None
    url = str(repo_url).rstrip("/")
    wheel = next((p.name for p in folder.glob("*-any-py3-none-any.whl")), None)
    result = {"url": url, "wheel_url": f"{url}/resolve/main/{wheel}" if wheel else None, "commit": str(commit)}
    msg.good(f"Pushed to {url}", f"pip install {result['wheel_url']}" if wheel else "")
    return result


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return f"{type(err).__name__}: {text}"[:300]
