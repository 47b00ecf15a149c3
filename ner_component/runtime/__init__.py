"""What `spacy.load()` of a trained pipeline needs, apart from the project's tooling.

Every module here is also a `spacy package --code` file: the package step copies it
flat into the model wheel, which imports it as `<model package>.<module>`, and first
imports each file alone, outside any package (`spacy.util.import_file`). So a module
here imports only spaCy, thinc, numpy, torch, spacy-transformers and (through it) Hugging Face tokenizers, nothing of
`ner_component`, and no module of this folder with an import statement: one that
needs another (`token_ner` needs `iob` and `token_classifier`) loads it with
`token_ner._sibling`, which finds it in either package or beside the file.
Registering a name a second time (the project and a model wheel in one
environment) is harmless.

- `transformer`: the transformer layer (`ner_component.TransformerModel.v1`).
- `token_classifier`: the `token_ner` architectures (`ner_component.TokenClassifier.v1`,
  `ner_component.TokenClassifierCRF.v1`,
  `ner_component.reduce_first.v1`).
- `iob`: IOB2 tags, constraints, Viterbi decoding, spans and their confidences.
- `tokenizer`: the character tokenizer (`ner_component.CharacterTokenizer.v1`) of
  pipelines trained on WikiANN's character-segmented languages.
- `token_ner`: the component, its factory and `Span._.confidence`.
"""
# The --code files of a packaged pipeline, in import order: a module after the
# ones it loads.
RUNTIME_MODULES = ("transformer", "tokenizer", "token_classifier", "iob", "token_ner")
