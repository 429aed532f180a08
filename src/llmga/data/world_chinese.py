"""World requests, edits and chat in Chinese, each wording trained or held out (:mod:`.world_wording`).

The same interface as :mod:`llmga.data.world_english`. The generation prompt
stays the world's English caption (the painter's language); the sentence
around it and every plain answer are Chinese.
"""

from __future__ import annotations

import random

from ..world.captions import neighbour
from ..world.edits import EditPair
from ..world.scene import Background, Obj, Scene, WorldError
from .world_wording import HELD, TRAIN, Ask, Mention, phrasings, thing_names, whole_ask

SIZE = {"small": phrasings("小|小小的|很小的|微小的|小号的|小个的", "迷你"), "large": phrasings("大|大大的|很大的|超大的|大号的|大个的|硕大的", "巨大的")}
COLOUR = {"red": "红色", "orange": "橙色", "yellow": "黄色", "green": "绿色", "blue": "蓝色", "purple": "紫色",
          "pink": "粉色"}
SHAPE = {"circle": phrasings("圆形|圆"), "square": phrasings("正方形|方块"), "triangle": phrasings("三角形"),
         "star": phrasings("星星|五角星"), "diamond": phrasings("菱形"), "cross": phrasings("十字|十字形")}
PLACE = {
    "top left": phrasings("在左上角|在画面的左上角|靠近左上角|在左上部|在画面左上部分", "位于左上方"),
    "top middle": phrasings("在上方中间|在顶部中间|在画面顶部的中间|在顶端中央|在最上面的中间|在上部居中|在顶部正中|在上面正中间|"
                            "在上方|在顶部|在画面上方|在最上面|位于上方|在上方正中", "在正上方"),
    "top right": phrasings("在右上角|在画面的右上角|靠近右上角|在右上部|在画面右上部分", "位于右上方"),
    "middle left": phrasings("在左边|在左侧中间|在画面左侧|在左侧居中|在画面左边的中间|靠左居中|在左侧正中|位于左侧", "在左边的中部"),
    "center": phrasings("在中间|在正中间|在画面的中心|在中心|在中央|居中|在画面正中|位于中间", "在画面中央"),
    "middle right": phrasings("在右边|在右侧中间|在画面右侧|在右侧居中|在画面右边的中间|靠右居中|在右侧正中|位于右侧", "在右边的中部"),
    "bottom left": phrasings("在左下角|在画面的左下角|靠近左下角|在左下部|在画面左下部分", "位于左下方"),
    "bottom middle": phrasings("在下方中间|在底部中间|在画面底部的中间|在底端中央|在最下面的中间|在下部居中|在底部正中|在下面正中间|"
                               "在下方|在底部|在画面下方|在最下面|位于下方|在下方正中", "在正下方"),
    "bottom right": phrasings("在右下角|在画面的右下角|靠近右下角|在右下部|在画面右下部分", "位于右下方"),
}
RELATION = {"below": phrasings("在它下面|在它的下方|在它下边|就在它下面|在它底下|紧挨着它的下面|正好在它下面", "在它正下方"),
            "above": phrasings("在它上面|在它的上方|在它上边|就在它上面|在它上头|紧挨着它的上面|正好在它上面", "在它正上方"),
            "right": phrasings("在它右边|在它的右侧|在它的右边|就在它右边|紧挨着它的右边|在它旁边靠右|在它的右手方向", "在它右手边"),
            "left": phrasings("在它左边|在它的左侧|在它的左边|就在它左边|紧挨着它的左边|在它旁边靠左|在它的左手方向", "在它左手边")}
TIME = {"day": phrasings("白天|在白天|中午|上午|大白天", "阳光明媚的白天"), "sunset": phrasings("日落时|黄昏时|太阳落山时|黄昏|夕阳西下时", "傍晚"),
        "night": phrasings("夜晚|晚上|夜里|半夜|天黑以后", "深夜")}
TERRAIN = {"grass": phrasings("在草地上|在草坪上|在草丛里", "在绿草地上"), "sand": phrasings("在沙地上|在沙滩上|在沙丘上", "在沙漠里"),
           "snow": phrasings("在雪地上|在白雪上|在雪原上", "在积雪上"), "water": phrasings("在水面上|在水上|在海面上|在池塘上|在河面上", "在湖面上")}
GROUND = {"grass": "草地", "sand": "沙地", "snow": "雪地", "water": "水面"}
TIME_NOUN = {"day": "白天", "sunset": "日落", "night": "夜晚"}
COUNT = {1: "一个", 2: "两个", 3: "三个"}
JOIN = phrasings("，还有|，再画|，以及", "，另外还有")
FRAME = phrasings("画{x}|请画{x}|帮我画{x}|我想要{x}|生成一张图片：{x}|给我画{x}|请帮我画{x}|我想看{x}|可以画{x}吗？|能帮我画{x}吗？|"
                  "画一下{x}|我需要一张图：{x}|给我来{x}",
                  "能不能画{x}？|麻烦画{x}|来一张图：{x}")
NEXT_FRAME = phrasings("现在画{x}|再画一张新的：{x}|然后画{x}|下一张画{x}", "接下来画{x}")
ANYTHING = phrasings("随便画点什么|给我一个惊喜|画什么都行|你来决定画什么|随便给我画一张|随便画一张图吧|画一幅画给我看看|"
                     "给我画张好看的图片|想画什么就画什么|自由发挥吧|来一张图，内容你定", "画一张你喜欢的图")

EDIT = {
    "recolour": phrasings("把{obj}变成{colour}|把{obj}改成{colour}|把{obj}涂成{colour}|{obj}改为{colour}", "{obj}能换成{colour}吗？"),
    "replace": phrasings("把{obj}换成{shape}|把{obj}变成{shape}|拿{shape}替换{obj}|把{obj}替换成{shape}|{obj}改为{shape}|"
                        "以{shape}取代{obj}|{obj}换成{shape}吧|用{shape}替换{obj}", "用{shape}代替{obj}"),
    "add": phrasings("再加{new}，{place}|添加{new}，{place}|{place}添加{new}|{place}也画上{new}|{place}加上{new}|"
                     "{place}多画{new}", "{place}再放{new}"),
    "remove": phrasings("去掉{obj}|删除{obj}|把{obj}去掉|把{obj}拿掉|{obj}删掉吧|移除{obj}|把{obj}删了|{obj}拿走吧|清除{obj}", "不要{obj}了"),
    "time": phrasings("把它变成{time}|改成{time}|让它变成{time}|调成{time}|变为{time}|换到{time}|画成{time}的|换为{time}|"
                      "改到{time}|设成{time}", "换成{time}的样子"),
    "terrain": phrasings("把地面换成{ground}|背景换成{ground}|地面改成{ground}|把背景改为{ground}|挪到{ground}上", "放到{ground}上"),
}
#: resize edits, by the size the object is made
RESIZE = {"large": phrasings("把{obj}变大|把{obj}放大|把{obj}画大一点|{obj}再大一些|让{obj}大一点|{obj}改成大的|把{obj}弄大些|"
                             "{obj}画得大一点|{obj}太小了|把{obj}画得更大|{obj}要大一点|放大一下{obj}|把{obj}扩大",
                             "{obj}能再大点吗？|把{obj}加大一些"),
          "small": phrasings("把{obj}变小|把{obj}缩小|把{obj}画小一点|{obj}再小一些|让{obj}小一点|{obj}改成小的|把{obj}弄小些|"
                             "{obj}画得小一点|{obj}太大了|把{obj}画得更小|{obj}要小一点|缩小一下{obj}|把{obj}缩一缩",
                             "{obj}能再小点吗？|把{obj}缩小一些")}
#: the answer to a resize to the size the object already has (trained only): nothing is painted
SAME_SIZE = {"large": phrasings("{obj}已经是大的了：我只画大、小两种尺寸，没法再放大。要不要把{obj}变小？|"
                                "{obj}已经是我能画的最大尺寸了。我可以把{obj}变小，或者换个位置。"),
             "small": phrasings("{obj}已经是小的了：我只画大、小两种尺寸，没法再缩小。要不要把{obj}变大？|"
                                "{obj}已经是我能画的最小尺寸了。我可以把{obj}变大，或者换个位置。")}
#: move edits: ``{cell}`` is a place without its 在 ("左上角")
MOVE = phrasings("把{obj}移到{cell}|把{obj}挪到{cell}|把{obj}移动到{cell}|{obj}移到{cell}吧|把{obj}放在{cell}|"
                 "让{obj}去{cell}", "能把{obj}挪到{cell}吗？|{obj}换到{cell}去")
#: how often a resize or move of the only object calls it 它 ("把它变大")
IT_SHARE = 0.5
SIMILAR = phrasings("再画一张类似的|来个差不多的", "类似的再来一张")
ACCEPT = phrasings("好的|可以|好啊，画吧", "行，就这个")
GREETING = phrasings("你好|嗨|你好！|您好|哈喽|晚上好|下午好|嗨，你好吗？|在吗？|你是谁？", "早上好")
THANKS = phrasings("谢谢|谢谢你！|非常感谢|太感谢了|谢啦|感谢！|画得真好，谢谢", "多谢")
CAPABILITY = phrasings("你能画什么？|你会画哪些形状？|你会画什么？|你能做什么？|你会哪些颜色？|帮助|你有什么功能？|"
                       "你能画哪些背景？|怎么用？|你擅长画什么？|你可以画哪些东西？|你都能画啥？|你会画哪些东西？", "你都会画些什么？")
WORLD = "形状（圆形、正方形、三角形、星星、菱形和十字），七种颜色（红、橙、黄、绿、蓝、紫、粉），大或小，放在三乘三格子的任意位置，背景是草地、沙地、雪地或水面，白天、日落或夜晚"
ANSWER = {"greeting": phrasings("你好！我会画简单的图：" + WORLD + "。想让我画什么？"),
          "thanks": phrasings("不客气！|不用谢！还想画点什么吗？"),
          "capability": phrasings("我会画" + WORLD + "。")}
#: a question about the picture just painted, and the answer that describes it
LOOK = phrasings("图里有什么？|你画了什么？|描述一下这张图。|它是什么颜色的？|这是什么形状？|图片上有什么？|画的是白天还是晚上？|"
                 "形状在图的哪里？|你画的是什么？|地面是什么？",
                 "这张图里有什么？|说说你看到了什么。|图里的形状是什么颜色？|这幅画里都有啥？")
LOOK_ANSWER = phrasings("图里是{scene}。|我画了{scene}。|这张图上有{scene}。")
SUM = phrasings("{a}加{b}等于几？|{a}加{b}是多少？", "{a}和{b}加起来是多少？")
THING = thing_names(1)
#: plain questions that name the world's words but ask for no picture (trained only)
FACTS = (("三角形有几条边？", "三角形有三条边。"), ("正方形有几个角？", "正方形有四个角。"),
         ("蓝色和黄色混在一起是什么颜色？", "蓝色和黄色混合是绿色。"), ("草是什么颜色的？", "草是绿色的。"),
         ("中国的首都是哪里？", "中国的首都是北京。"), ("日本的首都是哪里？", "日本的首都是东京。"),
         ("法国的首都是哪里？", "法国的首都是巴黎。"), ("白天的反义词是什么？", "白天的反义词是夜晚。"),
         ("星星一般有几个角？", "星星一般有五个角。"), ("一周有几天？", "一周有七天。"))
OUTSIDE_ANSWER = phrasings("抱歉，我画不了{thing}：我只会画简单的形状（圆形、正方形、三角形、星星、菱形和十字）。要不要我画{offer}？|"
                           "{thing}我画不了，我的图只由形状组成。我可以画{offer}，好吗？")
REPLY = {"generate": phrasings("好的，这是你要的图片。|没问题！|给你画好了。|好的！"),
         "edit": phrasings("好的，已经改好了。|没问题，这是修改后的图片。|改好了。"),
         "similar": phrasings("好的，再来一张类似的。|这是一张类似的图片。")}


def noun_phrase(mention: Mention, rng: random.Random, split: str) -> str:
    """"一个红色的小星星", "两个绿色的圆形"."""
    colour = COLOUR[mention.colour] + "的" if mention.colour else ""
    size = SIZE[mention.size].pick(rng, split) if mention.size else ""
    return COUNT[mention.count] + colour + size + SHAPE[mention.shape].pick(rng, split)


def body(ask: Ask, rng: random.Random, split: str) -> str:
    """The objects with their places, then the time and the ground."""
    pieces = []
    for index, mention in enumerate(ask.mentions):
        phrase = noun_phrase(mention, rng, split)
        if mention.position:
            phrase += "，" + PLACE[mention.position].pick(rng, split)
        elif mention.relation:
            phrase += "，" + RELATION[mention.relation].pick(rng, split)
        pieces.append(phrase if index == 0 else JOIN.pick(rng, split) + phrase)
    scenery = [table[value].pick(rng, split) for table, value in ((TIME, ask.time), (TERRAIN, ask.terrain)) if value]
    return "，".join(["".join(pieces), *scenery])


def request(ask: Ask, rng: random.Random, split: str, after_picture: bool = False, words: dict | None = None) -> str:
    """A whole drawing request (``words``, the new-words probe, is English only)."""
    return (NEXT_FRAME if after_picture else FRAME).pick(rng, split, x=body(ask, rng, split))


def anything(rng: random.Random, split: str) -> str:
    return ANYTHING.pick(rng, split)


def refer(scene: Scene, obj: Obj, rng: random.Random, split: str) -> str:
    """The shortest phrase that singles ``obj`` out: "星星", "红色的星星", "左上角的星星"."""
    shape = SHAPE[obj.shape].pick(rng, split)
    others = [o for o in scene.objects if o != obj]
    if all(o.shape != obj.shape for o in others):
        return shape
    if all((o.colour, o.shape) != (obj.colour, obj.shape) for o in others):
        return COLOUR[obj.colour] + "的" + shape
    return PLACE[obj.position].train[0].removeprefix("在") + "的" + shape


def cell(position: str, rng: random.Random, split: str) -> str:
    """A cell as a noun, after 移到: a place of ``split`` that starts with 在, without it ("左上角")."""
    wordings = PLACE[position]
    nouns = [w.removeprefix("在") for w in (wordings.held if split == HELD else ()) if w.startswith("在")]
    return rng.choice(nouns or [w.removeprefix("在") for w in wordings.train if w.startswith("在")])


def edit(pair: EditPair, rng: random.Random, split: str) -> str:
    """An instruction for ``pair``: "把星星变成蓝色"."""
    source, target = pair.source, pair.target
    if pair.kind == "time":
        return EDIT["time"].pick(rng, split, time=TIME_NOUN[target.background.time])
    if pair.kind == "terrain":
        return EDIT["terrain"].pick(rng, split, ground=GROUND[target.background.terrain])
    if pair.kind == "add":
        new = next(o for o in target.objects if o not in source.objects)
        return EDIT["add"].pick(rng, split, new=noun_phrase(Mention(new.shape, new.colour, new.size), rng, split),
                                place=PLACE[new.position].pick(rng, split))
    old = next(o for o in source.objects if o not in target.objects)
    new = next((o for o in target.objects if o not in source.objects), None)
    if pair.kind in ("resize", "move"):
        obj = _named(source, old, rng, split)
        return (RESIZE[new.size].pick(rng, split, obj=obj) if pair.kind == "resize" else
                MOVE.pick(rng, split, obj=obj, cell=cell(new.position, rng, split)))
    return EDIT[pair.kind].pick(rng, split, obj=refer(source, old, rng, split),
                                colour=COLOUR[new.colour] if new else "",
                                shape=SHAPE[new.shape].pick(rng, split) if new else "")


def _named(scene: Scene, obj: Obj, rng: random.Random, split: str) -> str:
    """How a resize or move names ``obj``: 它 (half the time, where it is alone) or the phrase singling it out."""
    return "它" if len(scene.objects) == 1 and rng.random() < IT_SHARE else refer(scene, obj, rng, split)


def same_size(scene: Scene, obj: Obj, rng: random.Random, split: str) -> tuple[str, str]:
    """A resize of ``obj`` to the size it already has ("把它变大" of a large star), and the answer that says so
    and offers the other size: nothing is painted."""
    name = _named(scene, obj, rng, split)
    return RESIZE[obj.size].pick(rng, split, obj=name), SAME_SIZE[obj.size].pick(rng, split, obj=name)


def similar(rng: random.Random, split: str) -> str:
    return SIMILAR.pick(rng, split)


def accept(rng: random.Random, split: str) -> str:
    return ACCEPT.pick(rng, split)


def chat(kind: str, rng: random.Random, split: str) -> tuple[str, str]:
    asked = {"greeting": GREETING, "thanks": THANKS, "capability": CAPABILITY}[kind].pick(rng, split)
    return asked, ANSWER[kind].pick(rng, split)


def question(rng: random.Random, split: str) -> tuple[str, str]:
    """A plain question (a sum) and its plain answer."""
    a, b = rng.randint(2, 60), rng.randint(2, 60)
    return SUM.pick(rng, split, a=str(a), b=str(b)), f"{a}加{b}等于{a + b}。"


class _FirstWording(random.Random):
    """A chooser that takes every wording's first: one fixed form for each word."""

    def choice(self, seq):
        return seq[0]


def describe(scene: Scene) -> str:
    """Everything ``scene`` shows, one fixed wording for each word ("一个红色的小星星，在左上角，夜晚，在雪地上"):
    a fixed form is learnt as a table of words, as the English caption is."""
    return body(whole_ask(scene), _FirstWording(), TRAIN)


def look(scene: Scene, rng: random.Random, split: str) -> tuple[str, str]:
    """A question about the picture of ``scene`` just painted, and the answer describing it."""
    question = LOOK.pick(rng, split)
    # the varied wording once drawn for the answer is drawn still, so that every item after it stays as it was
    body(whole_ask(scene), rng, TRAIN)
    return question, LOOK_ANSWER.pick(rng, split, scene=describe(scene))


def outside(thing: str, offer: Mention, rng: random.Random, split: str) -> tuple[str, str]:
    asked = FRAME.pick(rng, split, x=THING[thing])
    return asked, OUTSIDE_ANSWER.pick(rng, split, thing=THING[thing], offer=noun_phrase(offer, rng, "train"))


def reply(task: str, rng: random.Random) -> str:
    return REPLY[task].pick(rng, "train")


def _lexicon() -> dict[str, tuple[str, str]]:
    """Every Chinese world word, by its text: (attribute, value); a count word or relation by its own kind."""
    tables = {"size": SIZE, "shape": SHAPE, "position": PLACE, "relation": RELATION, "time": TIME, "terrain": TERRAIN}
    words = {text: (attribute, value) for attribute, table in tables.items()
             for value, wordings in table.items() for text in wordings.all()}
    words |= {text: ("colour", value) for value, text in COLOUR.items()}
    words |= {text: ("terrain", value) for value, text in GROUND.items()}
    words |= {text: ("time", value) for value, text in TIME_NOUN.items()}
    return words | {text: ("count", str(n)) for n, text in COUNT.items()}


_LEXICON = _lexicon()
_LONGEST = max(map(len, _LEXICON))


def _words(text: str) -> list[tuple[str, str]]:
    """The world words of ``text`` in order, each the longest that starts where it stands."""
    found, start = [], 0
    while start < len(text):
        for end in range(min(len(text), start + _LONGEST), start, -1):
            if text[start:end] in _LEXICON:
                found.append(_LEXICON[text[start:end]])
                start = end
                break
        else:
            start += 1
    return found


def read_description(text: str) -> Scene | None:
    """The scene a Chinese description of a picture names ("图里是一个红色的小星星，在左上角，夜晚，在雪地上。"),
    or None where it names no whole scene: an object lacks a word, a word is said twice otherwise, a
    place is off the grid, or several objects share one phrase. Each count word starts an object; a
    relation places it next to the one before."""
    objects: list[dict[str, str]] = []
    scenery: dict[str, str] = {}
    for attribute, value in _words(text):
        if attribute == "count":
            if value != "1":  # several alike share no one cell
                return None
            objects.append({})
            continue
        if attribute not in ("time", "terrain") and not objects:
            objects.append({})
        if attribute == "relation":
            before = objects[-2].get("position") if len(objects) > 1 else None
            attribute, value = "position", before and neighbour(before, value)
        held = scenery if attribute in ("time", "terrain") else objects[-1]
        if value is None or held.setdefault(attribute, value) != value:
            return None
    try:
        return Scene(tuple(Obj(**o) for o in objects), Background(**scenery)) if objects and len(scenery) == 2 else None
    except (TypeError, WorldError):  # a missing word; a cell named twice
        return None
