"""Question wordings of the rules miner, kept as data: several phrasings per task type.

Each wording is a ``str.format`` pattern; the fields it may use are listed above each table. The miner picks one
with the text's seeded RNG. Multiple-choice questions get their ``\\nOptions:\\n- ...`` block appended by the
miner, so no wording here ends with options or contains a wire marker.
"""

from __future__ import annotations

# summarize: no fields (the answer is the text's title).
SUMMARIZE = (
    "What would be a good title for this text?",
    "Give the article above a headline.",
    "Suggest a short title that captures what the passage is about.",
    "Sum up the text in a single line that could serve as its title.",
    "What is the title of this piece?",
    "Write a headline for the passage.",
    "In a few words, name this article.",
)

# title_to_article: {title}. The answer is the opening of the body.
TITLE_TO_ARTICLE = (
    'Write the opening of an article titled "{title}".',
    'Here is a headline: "{title}". Write the first few sentences of the article that goes with it.',
    'Compose the beginning of a piece with the title "{title}".',
    "Title: {title}\nWrite an introduction for this article.",
    'Draft the first paragraph of an article called "{title}".',
    'How might an article with the headline "{title}" begin?',
)

# nli: {premise}, {premise_bare}, {hypothesis}, {hypothesis_bare}, {hypothesis_lower_bare}. Options are appended.
# The passage states both sentences, so a wording never asks whether the hypothesis is *true*: it asks how the
# text relates the two. Each wording names the question it asks, which decides the answer per link label:
#   follows:  does B follow from A, going by the text?      result -> yes, addition -> cannot tell
#   result:   does the text present B as drawn from A?      result -> yes, otherwise no
#   contrast: does B contrast with A?                         contrast -> yes, otherwise no
#   relation: how does B relate to A?                         one of RELATION_OPTIONS (not for additions, which
#             may read as a result as well)
NLI = (
    ('Premise: "{premise}"\nHypothesis: "{hypothesis}"\nAccording to the text, does the hypothesis follow from '
     "the premise?", "follows"),
    ('"{premise}" Going by the passage, does it follow from this that "{hypothesis_bare}"?', "follows"),
    ('Given that "{premise_bare}", does the text present "{hypothesis_bare}" as a consequence?', "result"),
    ("{premise}\nDoes the passage draw from this the conclusion that {hypothesis_lower_bare}?", "result"),
    ("Sentence A: {premise}\nSentence B: {hypothesis}\nIn the text, does sentence B stand in contrast to "
     "sentence A?", "contrast"),
    ('Does the passage set "{hypothesis_bare}" against what it said before, "{premise_bare}"?', "contrast"),
    ("Sentence A: {premise}\nSentence B: {hypothesis}\nHow does sentence B relate to sentence A in the text?",
     "relation"),
    ('In the passage, sentence A, "{premise}", is followed by sentence B, "{hypothesis}" How are the two '
     "connected?", "relation"),
)  # fmt: skip
# The kinds of question each link label is asked with. A contrast is not asked whether it "follows": both sentences
# are true in the text, and on a yes/no/maybe scale "no" would say the second is false.
NLI_KINDS = {
    "entailment": ("follows", "result", "contrast", "relation"),
    "contradiction": ("result", "contrast", "relation"),
    "neutral": ("follows", "result", "contrast"),
}
# "follows" answers for (entailment, contradiction, neutral), in the order the options are listed; one case per text.
NLI_OPTIONS = {
    "lower": (("yes", "no", "maybe"), ("yes", "no", "it is not possible to tell")),
    "upper": (("Yes", "No", "It is not possible to tell"), ("Yes", "No", "Maybe")),
}
YES_NO = {"lower": ("yes", "no"), "upper": ("Yes", "No")}
RELATION_OPTIONS = {
    "entailment": "It states a result or conclusion of sentence A",
    "contradiction": "It contrasts with sentence A",
    "neutral": "It adds further information to sentence A",
}

# connective: {first}, {second}, {second_lower}. Options (connectives) are appended.
CONNECTIVE = (
    "Which word or phrase best connects these two sentences?\nSentence 1: {first}\nSentence 2: {second}",
    "Fill in the blank: {first} ____, {second_lower}",
    "Choose the connective that links the two sentences most naturally.\n{first}\n{second}",
    "Which expression should open the second sentence to link it to the first?\nFirst: {first}\n"
    "Second: ..., {second_lower}",
    '"{first} ___, {second_lower}"\nWhat fits best in the gap?',
    "Pick the linking expression that fits between these sentences.\nFirst: {first}\nSecond: {second}",
)

# cause_effect (forward, premise -> what the text draws from it): {cause}, {cause_bare}, {cause_lower_bare}.
# "Therefore" may introduce a consequence or an inference from evidence: the wordings fit both.
CAUSE_EFFECT = (
    "{cause}\nWhat does the passage conclude from this?",
    'According to the text, what follows from this: "{cause_bare}"?',
    "Given that {cause_lower_bare}, what does the passage conclude?",
    '"{cause}" What does the text say follows from this?',
    "What does the text draw from the following? {cause}",
    "The passage says: {cause}\nWhat follows from it, according to the text?",
)

# effect_cause (backward, effect -> reason): {effect}, {effect_bare}, {effect_lower_bare}.
EFFECT_CAUSE = (
    "According to the passage, what is the reason for the following? {effect}",
    '"{effect}" What caused this, according to the text?',
    'What explanation does the text give for this: "{effect_bare}"?',
    "Identify the cause: {effect}",
    "The text states that {effect_lower_bare}. Why?",
    "{effect}\nWhy is that, according to the passage?",
)

# paraphrase, the text's own restatement ("In other words, ..."): {sentence}, {sentence_bare}. The answer is the
# sentence the text restates it with, which may explain or draw out the point rather than repeat it exactly.
PARAPHRASE = (
    "How does the text put the following in other words? {sentence}",
    'The passage restates "{sentence_bare}". What does it say?',
    "{sentence}\nHow does the passage rephrase or explain this?",
    'What does the text say to make this point clearer: "{sentence_bare}"?',
    "The passage says: {sentence}\nHow does it go on to restate this?",
)
# paraphrase, detection: {first}, {second}. Options (yes/no) are appended.
PARAPHRASE_DETECT = (
    "Do these two sentences say the same thing?\n1. {first}\n2. {second}",
    "Is the second sentence a paraphrase of the first?\nFirst: {first}\nSecond: {second}",
    '"{first}" and "{second}" -- do they mean the same?',
    "Sentence A: {first}\nSentence B: {second}\nDoes B restate A?",
    "Are the following sentences paraphrases of each other?\n{first}\n{second}",
)
# Detection is asked only of pairs that share most of their content words (see miner.py).
# paraphrase, inline clarification ("X, i.e., Y"): {before}. The answer is Y.
CLARIFY = (
    'The passage mentions "{before}". What does it say this means, specifically?',
    'What does the text spell out right after "{before}"?',
    'Explain more precisely what is meant in: "{before}"',
    '"{before}" -- how does the text make this explicit?',
    'The text says "{before}". Restate the point it clarifies.',
)

# definition: {term}. The answer is the defining sentence.
DEFINITION = (
    'What does "{term}" mean?',
    "Define {term} as used in the text.",
    'How does the passage define "{term}"?',
    'Explain the term "{term}".',
    "Write a sentence that defines {term}.",
    'Give the definition of "{term}" from the text.',
)

# topic, about the subject: {subject_lower}; word-to-text from the topic: {topic}. The answer is the sentence.
TOPIC = (
    "What is {subject_lower} about?",
    "According to the text, what does {subject_lower} focus on?",
    "Describe, in one sentence, what {subject_lower} deals with.",
    "State the subject of {subject_lower} in a sentence.",
    "Write a sentence about {topic}.",
    'Use the phrase "{topic}" in a sentence that states a topic.',
    "Compose one sentence on the topic of {topic}.",
)

# keywords: {words} (comma-separated) or {words_and} ("a, b and c"). The answer contains every word.
KEYWORDS = (
    "Write a sentence that uses all of these words: {words}.",
    "Make a sentence containing the following terms: {words}.",
    "Use these keywords in one sentence: {words}.",
    "Keywords: {words}\nWrite a sentence that includes them.",
    "Form a single sentence that mentions {words_and}.",
    "Here are some terms from a text: {words}. Write a sentence that contains them all.",
)

# completion of the whole text: {before} (its first sentences). The answer is the rest of the text.
ARTICLE_COMPLETION = (
    "Here is the beginning of a text. Write the rest of it.\n{before}",
    "Finish this text: {before}",
    "{before}\nContinue the text to its end.",
    "Complete the article that begins: {before}",
    "The opening of a passage is given below. How does the rest of it go?\n{before}",
)

# completion: {before} (the sentence or two before the split). The answer is what follows.
COMPLETION = (
    "Continue the text: {before}",
    'What comes next in the passage after "{before}"?',
    "{before}\nHow does the text go on?",
    "Give what comes next in the passage. {before} ...",
    "Write what follows this in the text: {before}",
    "Pick up where this leaves off: {before}",
)
