// Families not written yet; each moves to its own file (named after Keras's module) when implemented.
let regularizationBuilders: [LayerBuilder] = []
let reshapingBuilders: [LayerBuilder] = []
let convolutionalBuilders: [LayerBuilder] = []
let poolingBuilders: [LayerBuilder] = []
let normalizationBuilders: [LayerBuilder] = []
let mergingBuilders: [LayerBuilder] = []
let activationBuilders: [LayerBuilder] = []
