//! Speculative decoding on the real test model: the answers are plain decoding's, token for
//! token (greedy) and draw for draw (sampling), while the drafts are really checked.

use std::path::PathBuf;

use ibert_catalog::ensure_test_model;
use ibert_model::{ChatMessage, Decoding, Engine, GenerationOptions, LocalModel};
use ibert_oracle::{PythonEnv, cache_dir};

fn model_path() -> PathBuf {
    let env = PythonEnv::ensure(&|_| {}).unwrap_or_else(|error| panic!("the Python environment: {error}"));
    ensure_test_model(&env.python(), &cache_dir()).unwrap_or_else(|error| panic!("the test model: {error}"))
}

const PROGRAM: &str = "expr = orders.filter(orders.amount > 100).group_by(\"status\").aggregate(total=orders.amount.sum(), n=orders.count())";

fn prompts(engine: &LocalModel) -> Vec<String> {
    [
        format!(
            "This Ibis program fails with: AttributeError: 'Table' object has no attribute 'amont'\n```python\n{}\n```\nReply with the corrected program.",
            PROGRAM.replace("orders.amount.sum", "orders.amont.sum")
        ),
        format!("Repeat this line exactly:\n{PROGRAM}"),
        "List the days of the week, one per line.".to_string(),
    ]
    .iter()
    .map(|question| engine.chat_prompt(&[ChatMessage::new("user", question)]).unwrap())
    .collect()
}

/// The answers of `engine` with `decoding`, and the drafted and accepted token counts.
fn answers(engine: &mut LocalModel, decoding: Decoding, options: &GenerationOptions) -> (Vec<String>, usize, usize) {
    engine.set_decoding(decoding).unwrap();
    engine.forget_answers();
    let (mut texts, mut drafted, mut accepted) = (Vec::new(), 0, 0);
    for prompt in prompts(engine) {
        engine.forget_cached_prompt();
        let mut streamed = String::new();
        let generation = engine.generate(&prompt, options, &mut |piece| streamed.push_str(piece)).unwrap();
        assert_eq!(streamed, generation.text, "{decoding}: the streamed pieces make up the answer");
        assert_eq!(generation.decoding.decoding, decoding);
        drafted += generation.decoding.drafted;
        accepted += generation.decoding.accepted;
        texts.push(generation.text);
    }
    (texts, drafted, accepted)
}

#[test]
fn prompt_lookup_gives_plain_decodings_answers_greedy_and_sampled_and_its_drafts_are_checked() {
    let mut engine = LocalModel::load(&model_path()).expect("the test model loads");
    assert_eq!(engine.decoding(), Decoding::PromptLookup, "lookup is the native backend's default");
    let greedy = GenerationOptions { max_tokens: 64, ..GenerationOptions::default() };
    let sampled = GenerationOptions { max_tokens: 64, temperature: 0.8, top_k: Some(40), seed: 11, repetition_penalty: 1.1, ..GenerationOptions::default() };
    for options in [greedy, sampled] {
        let (plain, plain_drafted, _) = answers(&mut engine, Decoding::Plain, &options);
        let (lookup, drafted, accepted) = answers(&mut engine, Decoding::PromptLookup, &options);
        assert_eq!(plain_drafted, 0);
        assert_eq!(lookup, plain, "temperature {}: the same answers", options.temperature);
        assert!(drafted > 0 && accepted > 0 && accepted < drafted, "drafts were checked, some kept, some refused: {accepted}/{drafted}");
    }
}

#[test]
fn a_draft_model_of_the_same_vocabulary_drafts_and_changes_nothing() {
    let mut engine = LocalModel::load(&model_path()).expect("the test model loads");
    assert!(engine.set_decoding(Decoding::DraftModel).unwrap_err().to_string().contains("draft model"), "no draft model loaded yet");
    // The model drafting for itself: greedy drafts are what it would say, so a check that runs
    // the batch exactly like single steps keeps every one of them.
    engine.set_draft_model(LocalModel::load(&model_path()).unwrap()).expect("the same vocabulary");
    let options = GenerationOptions { max_tokens: 48, ..GenerationOptions::default() };
    let (plain, _, _) = answers(&mut engine, Decoding::Plain, &options);
    let (drafted_answers, drafted, accepted) = answers(&mut engine, Decoding::DraftModel, &options);
    assert_eq!(drafted_answers, plain);
    assert!(drafted > 20 && accepted == drafted, "every greedy draft of the model itself is kept: {accepted}/{drafted}");
    let (both, _, _) = answers(&mut engine, Decoding::LookupThenDraft, &options);
    assert_eq!(both, plain);
    assert!(engine.describe().contains("lookup+draft decoding with"), "{}", engine.describe());
}
