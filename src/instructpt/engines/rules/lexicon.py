"""Word lists the rules miner needs: English function words, common vocabulary, connectives, abbreviations.

All lists are small and built in, so the miner runs offline with no downloads. ``FUNCTION_WORDS`` decides
whether a text is English; ``COMMON_WORDS`` marks everyday words that are never mined as domain keywords;
``CONNECTIVES`` maps each sentence-opening connective to the relation it signals.
"""

from __future__ import annotations


def _words(block: str) -> frozenset[str]:
    """A word list written as whitespace-separated text (easier to read and edit than a list literal)."""
    return frozenset(block.split())


# Words that make up a large share of any English text and are rare in other Latin-script languages (short
# words shared with German, Dutch, French or Spanish, such as "in", "a", "so" or "die", are left out on purpose).
FUNCTION_WORDS = _words(
    """
    the of and to is that for with as on are by this be from it or which have has were not at their these
    been we they its can more but than such into between other there after may when who will would should
    could our your he she his her them those then what how about only most some each both through during
    while because if was did does had any many much very just over under also where why being whose
    """
)

# Everyday English vocabulary: never treated as a rare domain keyword. Short words (< 6 letters) are never
# candidates anyway, so the list concentrates on longer general words.
COMMON_WORDS = FUNCTION_WORDS | _words(
    """
    a an in on at so no yes not all any few one two three four five six seven eight nine ten first second
    third last next new old good bad high low large small long short great little own same different able
    about above across after again against almost alone along already although always among another anyone
    anything around away became become becomes before began begin behind believe below beside besides
    better beyond between bring brought called cannot caused certain certainly change changed changes
    clearly closely common compared complete completely consider considered continue continued control
    course create created current currently decide decided described despite details develop developed
    development different difficult directly during early either enough entire especially established
    even every everyone everything example examples except expected experience explain explained fact
    factors family following follows former forward found further furthermore general generally given
    gives going greater greatest group groups happen happened having himself however important
    including increase increased increases increasing indeed information instead interest interested
    itself keeping known larger largely lastly later latter least leave likely little looking making
    matter meanwhile members method methods might minutes moment months moreover mostly mother nearly
    necessary needed neither never nevertheless nonetheless normal nothing notice number numbers object
    obtained often others otherwise outside overall particular particularly people percent perhaps person
    picture placed places played please point possible possibly present presented previous previously
    probably problem problems process produce produced provide provided purpose question questions quickly
    rather really reason reasons received recent recently related relatively remain remained remains report
    reported research result resulted results return second section several should showed shown shows
    significant significantly similar similarly simple simply since single situation something sometimes
    special specific started states still strong strongly student students studies study subject
    suggest suggested suggests support system systems taken taking therefore things thinking those though
    thought through throughout thus together toward towards turned under understand understanding unless
    until upon useful usually various version viewed whatever whether which within without wonder working
    world would written years yesterday yourself analysis analyses approach associated available based
    compared conclusion conclusions conducted data design effect effects evaluate evaluated evidence
    findings higher included increase level levels lower measured observed outcome outcomes performed
    potential primary reduced respectively role sample samples total treatment using value values whereas
    additional additionally affect affected along amount another area areas around because believe
    beginning behavior behaviour benefit benefits between billion budget building business cannot
    century certain chapter children choice choose citizen city clear close community company consequently
    country couple create culture customer decade decision deliver demand describe determine difference
    direction discover discuss discussed disease distance economic economy education effective effort
    element energy environment equal event events evening everybody everywhere exactly explain express
    feature figure final finally financial follow foreign future government growth happy health history
    hospital however human hundred idea identify image impact improve include income increase industry
    inside instance interest international involve issue issues itself kitchen language leader learn
    letter likely listen little local machine maintain manage management market material measure media
    medical member memory message middle million minute mission modern morning mountain movement music
    national natural nature nearly network nothing office official option order organization original
    outside painting parent partner patient patients period personal physical planet player police policy
    political popular population position positive power practice prepare president pressure pretty
    private product production professor program programme project property protect prove public quality
    quarter quite radio reach ready realize receive recognize record reduce reflect region relate
    relationship religious remember remove represent require resource respond response rest return reveal
    science scientist season secret security senior sense series serious service settle seven share
    simply sister social society software somebody someone source southern space speak speech spend sport
    spring staff stage standard statement station stock story strategy street structure success suddenly
    suffer summer surface teacher technology television themselves theory thousand threat through
    throughout today tonight toward trade training travel trouble truth twenty understand unit university
    various village violence visit weapon weather website week weight western whatever window within woman
    women wonder worker writer across action activity actually address administration admit adult agency
    agree agreement already although american animal answer anyone appear apply argue arrive article
    artist assume attack attention attorney audience author authority available avoid baby bank beautiful
    because before behind better beyond bill blood board body book born both break brother building
    campaign cancer candidate capital career carry catch cause center central chair challenge chance
    character charge check child choice church citizen claim class clearly coach cold collection college
    color commercial common compare computer concern condition conference congress consider consumer
    contain continue cost could court cover crime cultural daughter dead deal death debate decade deep
    defense degree democrat despite detail develop dinner discussion doctor door down draw dream drive
    during each early east easy economic edge effect eight either election else employee end enjoy enough
    enter entire especially establish even evening ever every everything evidence exist expect expert
    explain face fact factor fail fall family father fear federal feel field fight film find fine finger
    finish fire firm fish floor fly focus follow food foot force forget form forward free friend front
    full fund game garden general generation girl give glass goal green ground grow guess hair half hand
    hang happen hard head hear heart heat heavy help herself himself hold home hope hotel hour house
    however huge husband image imagine improve include indicate individual industry inside instead
    institution interview investment involve itself join just keep kill kind know land large late laugh
    lawyer lead learn least leave left legal less level life light like line list little live long look
    lose loss love main maintain major majority make manager many matter maybe mean measure meeting
    mention method might military mind minute miss model moment money month more most mouth move movie
    much must myself name nation near necessary need never news newspaper night none north note nothing
    notice number occur offer often once only open operation opportunity option order other others
    outside owner page pain paper parent part participant particular pass past pattern peace people
    perform perhaps physical pick piece place plan plant play point police poor popular possible power
    practice prepare present president prevent price probably problem process produce product
    professional property provide pull purpose push put question quickly race raise range rate reach read
    real reality really receive recent recognize reduce region remain remember report represent
    republican require resource respond responsibility result return right rise risk road rock room rule
    safe scene school score section sell send sense serious serve service several sexual shake share
    short shot should shoulder show side sign significant simple since sing single sister sit site size
    skill smile social soldier some someone son song soon sort sound south speak specific spend start
    state step still stop store strong structure student stuff style subject success successful suffer
    suggest summer support sure system table take talk task teach team tell tend term test thank their
    them themselves theory there these thing think third those though thought threat three through
    throughout throw thus time today together tonight total tough toward town traditional training
    treatment tree trial trip true truth turn type under understand until upon usually value various
    victim view visit voice vote wait walk wall want watch water wear week weight well west what whatever
    when where whether which while white whole whom whose wide wife will wind wish within without word
    work worker worry would write wrong yard yeah year young yourself participants participant subjects
    volunteers authors researchers scientists investigators respondents individuals adults users cells
    animals mice rats men boys girls households firms companies countries students teachers visitors
    """
)

# Sentence-opening connectives and the relation each signals (SPEC §9): entailment, contradiction, neutral.
ENTAILMENT = ("Therefore", "Thus", "Hence", "As a result", "Consequently", "Accordingly", "For this reason")
CONTRADICTION = (
    "However",
    "In contrast",
    "By contrast",
    "Nevertheless",
    "Nonetheless",
    "On the other hand",
    "Conversely",
    "On the contrary",
    "Even so",
    "Yet",
)
NEUTRAL = (
    "Moreover",
    "Furthermore",
    "In addition",
    "Additionally",
    "Also",
    "Besides",
    "What is more",
    "Likewise",
)
CONNECTIVES: dict[str, str] = {
    **{c: "entailment" for c in ENTAILMENT},
    **{c: "contradiction" for c in CONTRADICTION},
    **{c: "neutral" for c in NEUTRAL},
}
CONNECTIVES_BY_LABEL: dict[str, tuple[str, ...]] = {
    "entailment": ENTAILMENT,
    "contradiction": CONTRADICTION,
    "neutral": NEUTRAL,
}
# Single-word connectives that read naturally without a following comma ("Thus the model ..."); every other
# connective must be followed by one, which keeps "In addition to X, ..." or "However small ..." out.
NO_COMMA_OK = _words(
    "Therefore Thus Hence Consequently Accordingly Moreover Furthermore Additionally Nevertheless "
    "Nonetheless Conversely Yet"
)
# ... except before these words, where the connective is an adverb of the clause ("Yet another", "Thus far").
NOT_A_CONNECTIVE = {
    "Yet": frozenset({"another", "again", "more", "still", "to", "unknown"}),
    "Thus": frozenset({"far"}),
}

# Paraphrase cues: at the start of a sentence that restates the previous one, and inside a sentence.
PARAPHRASE_OPENERS = (
    "In other words",
    "That is to say",
    "Put differently",
    "Put another way",
    "To put it another way",
    "Stated differently",
    "Simply put",
    "Namely",
    "That is",
)
# Inline cues: the first two may be followed by a comma, the others must be ("X, that is, Y").
PARAPHRASE_INLINE = ("i.e.", "namely")
PARAPHRASE_INLINE_COMMA = ("that is to say", "that is", "in other words")
# Words that cannot be the term of a definition ("This refers to ...", "... is called into question").
NOT_TERMS = FUNCTION_WORDS | _words(
    "a an this it latter former above following same one ones another into upon off out up in on for"
)

# Tokens ending in a period that do not end a sentence.
ABBREVIATIONS = _words(
    """
    e.g. i.e. etc. vs. cf. al. fig. figs. eq. eqs. ref. refs. no. nos. vol. pp. p. ch. sec. approx. ca.
    dr. mr. mrs. ms. prof. st. jr. sr. inc. ltd. co. corp. dept. univ. jan. feb. mar. apr. jun. jul. aug.
    sep. sept. oct. nov. dec. u.s. u.k. e.u. ph.d. m.d. b.sc. m.sc. approx. min. max. resp. incl. viz.
    """
)
