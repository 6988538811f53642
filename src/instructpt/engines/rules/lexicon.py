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
    unlike according regardless notwithstanding
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

# General vocabulary of six letters or more that the lists above miss: everyday verbs, adjectives, adverbs and
# nouns of news, business, how-to and scientific prose. With their inflections (see ``keywords.is_generic``) they
# are never offered as a text's domain keywords.
GENERAL_WORDS = _words(
    """
    absence absolute accept accepted access accident account accurate achieve acquire actual addition
    adequate adjust advance advantage advice affair afford afterwards agenda aim allow allowed alongside
    altogether amazing announce annual anticipate anxious apparent apparently appeal appearance approve
    approximate argument arrange arrival aspect assess assessment assist associate attach attempt attend
    attitude attract average aware balance barely basic basically battle bearing become beginning behalf
    behave behaviour behavior benefit beneath biggest bottom boundary branch breath bright broad budget
    burden button calculate capable capacity careful carefully category caution celebrate centre century
    chapter cheap choose chosen circle circumstance citizen claimed clean clear climate closer closing
    colleague combine combined comfort comment commit commitment committee communicate community company
    comparison compete competition complain complex component concept concern concerned concluded
    conclude conditions confidence confirm confirmed conflict connect connection consequence consistent
    constant construct consult contact content context contract contrast contribute convert correct
    council counter couple create creative critical crucial culture customer damage danger dangerous dealing
    decline decrease deeply defend define definitely deliver demand demonstrate department depend
    depending deposit depth deserve desire destroy detect determine device differ difference digital
    dinner direct direction directly director discover discuss disease display distance distinct divide
    document domestic dominant double doubt dramatic driven during duty earlier easily economy edition
    editor effective effectively efficient effort elsewhere emerge emphasis employ enable encourage engage
    enhance enjoy ensure entirely environment equally equipment escape essential estimate event eventually
    exactly examine exceed excellent exchange excited exclude exercise existing expand expansion expense
    expensive explore expose express extend extent external extra extreme facility failure fairly familiar
    famous feature figure finally financial finding firmly flexible follow foreign formal fortune forward
    frequent frequently friendly future gather generate gentle genuine global government gradually
    greatly growing growth guarantee guidance handle hardly healthy heavily hidden highly holiday honest
    hospital however hundred identify ignore immediate immediately impact implement imply impose impossible
    impression improve improvement incident income increasingly independent indicate influence initial
    initially injury inner input insist install instance intend intense internal introduce invest involve
    involved issue itself journey judge junior justify kitchen largest launch leader leading leaving length
    lesson letter likely limited linked listen literally living locate location lowest mainly manage
    managed manner marked market mention merely middle minimum minor mission mistake modern modest
    moreover motion movement multiple mutual namely narrow native natural nature nearby nearly neither
    network normally notably notion numerous object obvious obviously occasion offer official ongoing
    online operate operation opinion opposite ordinary organise organize origin otherwise outcome output
    overall overcome overnight owner partly patient pattern payment percentage perfect perform performance
    permanent persist phase phrase physical planned platform pleased plenty pocket popular portion
    positive possess possible potential powerful practical precise prefer premium presence pressure
    prevent previous primarily principle prior priority private probable procedure proceed profile
    progress promise promote prompt proper properly proportion proposal propose prospect protect proud
    provide purchase pursue quarter question random rapid rapidly rarely reaction readily reality reasonable
    receive recent recently recommend recover reduce reduction refer regard regarding regional regular
    regularly reject relate relation relative release relevant reliable relief rely remaining remarkable
    remove repeat replace reply request require rescue reserve resist resolve respect respond response
    restore result retain reveal review reward roughly routine safety satisfy scheme search secure select
    separate sequence serious settle severe shortly signal silent similar simply slight slightly slowly
    smaller solid solution someone somewhat source spending spread stable standard statement status
    steady stretch strength strengthen strike structure struggle subsequent substantial succeed sudden
    sufficient suggest suitable supply suppose surface surprise surprised surround survey survive suspect
    sustain target technique temporary tendency thereby thorough thousand threshold through tonight topic
    toward tradition transfer transform travel treat trouble typical typically ultimately underlying
    underneath unique unlikely unusual update upward urgent utterly valuable variety vehicle venture visible
    volume warning weekly welcome whereas widely willing winner winter wonderful worried worse worst
    writing younger eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen thirty forty
    fifty sixty seventy eighty ninety hundreds thousands millions billion billions million trillion dollar
    dollars markets outnumber investing consider starting waiting bringing appears monday tuesday wednesday
    thursday friday saturday sunday january february march april june july august september october november
    december weekend morning afternoon evening interaction interactions intervention persistent accumulate
    environmental best fortnight filling outwards inwards evaporate grateful unlike negative resident residents
    district districts mixture mixtures delay delays
    """
)

# Base verbs that open an instruction ("Remove the pan ...", "Let it cool ..."). A sentence opening with one has no
# truth value: it is never used as a premise or hypothesis, nor embedded unquoted in a question.
IMPERATIVE_VERBS = _words(
    """
    add adjust allow apply arrange attach avoid bake be begin bend blend boil bring brush buy call change check
    choose clean clear click close coat combine connect cook cool cover cut decide discard drain dry dust
    empty ensure fill find finish fit fix fold follow gather get give go grab heat hold insert install
    keep knead lay leave let lift line loosen lower make mark measure mix move open paint peel pick place
    plant plug pour prepare press prune pull pump push put read release remember remove repeat replace
    rinse rub run sand scrape screw seal select set shake sharpen slide soak spray spread sprinkle squeeze
    start stir stop store stretch take tap tighten tilt trim try turn twist unplug unscrew use wait warm
    wash water wear whisk wipe wrap write
    """
)

# First- and second-person words: a sentence with one reads as the asker's own words when embedded unquoted.
PERSONAL_WORDS = _words("i me my mine myself we us our ours ourselves you your yours yourself yourselves")

# Words that mark a first line ending with a full stop as a sentence of the body, not a title: auxiliary verbs and
# pronouns ("The council met on Tuesday." has none, so title case or the next line decides; see text.py).
SENTENCE_WORDS = PERSONAL_WORDS | _words(
    """
    is are was were be been has have had will would can could should may might must does did it they he she
    this these there its their his her
    """
)

# Words that open a subordinate or relative clause: a clause opening with one is not a statement on its own.
SUBORDINATORS = _words(
    """
    although though even while whereas if when whenever since because as which that who whom whose unless
    until once after before where wherever whether so and but or nor yet
    """
)
