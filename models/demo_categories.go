package models

import "maps"

// demoCategories returns the categories of the demo catalog, in menu order.
func demoCategories() []Category {
	return []Category{
		{Slug: "kitchen", Name: "Kitchen & Dining", Position: 1},
		{Slug: "coffee-tea", Name: "Coffee & Tea", Position: 2},
		{Slug: "home", Name: "Home & Living", Position: 3},
		{Slug: "desk", Name: "Desk & Stationery", Position: 4},
		{Slug: "bags", Name: "Bags & Wallets", Position: 5},
		{Slug: "plants", Name: "Plants & Garden", Position: 6},
		{Slug: "outdoors", Name: "Outdoors", Position: 7},
	}
}

// demoProductCategory maps each demo product's slug to its category's slug.
func demoProductCategory() map[string]string {
	in := func(category string, products ...string) map[string]string {
		m := make(map[string]string, len(products))
		for _, p := range products {
			m[p] = category
		}
		return m
	}
	all := map[string]string{}
	for _, m := range []map[string]string{
		in("kitchen", "stoneware-mug", "enamel-tea-kettle", "oak-cutting-board", "linen-tea-towel-set",
			"ceramic-serving-bowl", "cast-iron-skillet", "olive-wood-spoon-set", "glass-storage-jar",
			"ceramic-dinner-plate", "copper-measuring-cups"),
		in("coffee-tea", "pour-over-coffee-dripper", "loose-leaf-green-tea", "earl-grey-tea-tin", "glass-teapot",
			"hand-coffee-grinder", "french-press", "matcha-whisk-set", "espresso-cup-pair"),
		in("home", "ceramic-bud-vase", "oak-table-lamp", "beeswax-pillar-candle", "soy-candle-jar",
			"round-wall-mirror", "woven-seagrass-basket", "brass-candle-holder", "oak-picture-frame",
			"linen-cushion-cover", "wool-throw-blanket", "organic-cotton-bath-towel"),
		in("desk", "linen-notebook-a5", "dot-grid-journal", "brass-fountain-pen", "recycled-paper-envelopes",
			"oak-desk-organiser", "watercolour-pencil-set", "weekly-desk-planner"),
		in("bags", "canvas-tote-bag", "waxed-canvas-backpack", "leather-card-wallet", "cotton-string-market-bag",
			"weekender-duffel-bag"),
		in("plants", "terracotta-plant-pot", "potted-snake-plant", "mini-cactus-trio", "ceramic-hanging-planter",
			"brass-watering-can", "ash-garden-trowel"),
		in("outdoors", "enamel-camping-mug", "insulated-water-bottle", "cotton-picnic-blanket", "folding-camp-stool",
			"solar-lantern"),
	} {
		maps.Copy(all, m)
	}
	return all
}
