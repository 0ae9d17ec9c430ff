cwlVersion: v1.2
$namespaces:
  s: https://schema.org/

s:name: mlmkit-inference
s:version: "0.2.0"
s:softwareVersion: "0.2.0"
s:description: >-
  Runs any model described by a STAC MLM (Machine Learning Model extension) Item over STAC imagery and
  writes Cloud-Optimized GeoTIFFs and a STAC catalog of results, one Item per input Item.
s:dateCreated: "2026-11-22"
s:license:
  class: s:CreativeWork
  s:name: Apache-2.0
  s:url: https://www.apache.org/licenses/LICENSE-2.0
s:keywords: [STAC, MLM, machine learning, inference, Earth observation, ONNX]
s:softwareHelp:
  class: s:CreativeWork
  s:name: mlmkit deployment guide
  s:url: https://github.com/mlmkit/mlmkit/blob/main/docs/how-to/deploy.md
s:codeRepository: https://github.com/mlmkit/mlmkit
s:author:
  - class: s:Person
    s:givenName: mlmkit
    s:familyName: maintainers
    s:email: maintainers@mlmkit.dev
    s:affiliation:
      class: s:Organization
      s:name: mlmkit project
s:publisher:
  class: s:Organization
  s:name: mlmkit project
  s:email: maintainers@mlmkit.dev

$graph:
  - class: Workflow
    id: mlmkit-inference
    label: MLM model inference
    doc: >-
      Applies the model of an MLM Item to each staged input catalog (scattered, one job per catalog) and
      merges the per-input result catalogs into one catalog.json with relative local assets, as stage-out expects.
    requirements:
      - class: ScatterFeatureRequirement
    inputs:
      model:
        type: Directory
        label: MLM model
        doc: >-
          Staged MLM model catalog: a directory with catalog.json linking the MLM Item and its ONNX asset (an
          ADES stages it from the MLM Item or catalog URL).
      imagery:
        type: Directory[]
        label: Input imagery
        doc: Staged STAC catalogs of the imagery (each a directory with catalog.json); the workflow runs once per catalog.
      tile_size:
        type: int?
        label: Tile size
        doc: Tile size in pixels for models with dynamic height and width (default 256); fixed-size models use their own.
      overlap:
        type: int?
        default: 0
        label: Tile overlap
        doc: Pixels shared by neighbouring tiles, blended in the result.
      batch_size:
        type: int?
        default: 4
        label: Batch size
        doc: Tiles per model call (4, mlmkit predict's default, was as fast as 8 with less memory on CPU; GPUs may want more).
      probabilities:
        type: boolean?
        default: false
        label: Class scores
        doc: Also write the class scores of classification outputs as a float32 COG beside the class map.
      providers:
        type: string[]?
        default: [CPUExecutionProvider]
        label: Execution providers
        doc: >-
          onnxruntime execution providers in order of preference, e.g. [CUDAExecutionProvider,
          CPUExecutionProvider] (default the CPU provider).
      source_hrefs:
        type: string[]?
        default: []
        label: Imagery URLs
        doc: >-
          URLs the imagery Items are published at (.../<id>.json or .../items/<id>), for the results' derived_from
          links where the staged copies carry no self link; each is taken for the Item its path names.
      model_href:
        type: string?
        label: Model URL
        doc: >-
          URL the MLM Item (or its catalog) is published at, for the results' derived_from link and
          processing:expression where the staged copy carries no self link.
    outputs:
      results:
        type: Directory
        outputSource: merge/results
        label: Results catalog
        doc: STAC catalog (catalog.json) of the result Items, each with its COGs and quicklook as relative local assets.
    steps:
      predict:
        label: Predict
        doc: Runs mlmkit predict on one input catalog.
        run: "#mlmkit-predict"
        scatter: imagery
        in:
          model: model
          imagery: imagery
          tile_size: tile_size
          overlap: overlap
          batch_size: batch_size
          probabilities: probabilities
          providers: providers
          source_hrefs: source_hrefs
          model_href: model_href
        out: [prediction]
      merge:
        label: Merge
        doc: Merges the result catalogs of all inputs into one catalog.
        run: "#mlmkit-merge"
        in:
          predictions: predict/prediction
        out: [results]

  - class: CommandLineTool
    id: mlmkit-predict
    label: mlmkit predict
    doc: Runs the model an MLM Item describes over the Items of one STAC catalog; writes COGs and a STAC catalog.
    hints:
      - class: DockerRequirement
        dockerPull: mlmkit:0.2.0
    requirements:
      - class: ResourceRequirement
        coresMin: 1
        coresMax: 4
        ramMin: 2048
        ramMax: 8192
      - class: NetworkAccess
        networkAccess: true
    baseCommand: [mlmkit, predict]
    arguments:
      - prefix: --output
        valueFrom: prediction
      - prefix: --threads
        valueFrom: $(runtime.cores)
    inputs:
      model:
        type: Directory
        label: MLM model
        doc: Directory with the MLM catalog.
        inputBinding:
          prefix: --model
      imagery:
        type: Directory
        label: Input imagery
        doc: A staged STAC catalog (directory with catalog.json).
        inputBinding:
          prefix: --input
      tile_size:
        type: int?
        label: Tile size
        doc: Tile size for models with dynamic height and width.
        inputBinding:
          prefix: --tile-size
      overlap:
        type: int?
        label: Tile overlap
        doc: Pixels shared by neighbouring tiles.
        inputBinding:
          prefix: --overlap
      batch_size:
        type: int?
        label: Batch size
        doc: Tiles per model call.
        inputBinding:
          prefix: --batch-size
      probabilities:
        type: boolean?
        label: Class scores
        doc: Also write the class scores.
        inputBinding:
          prefix: --probabilities
      providers:
        type: string[]?
        label: Execution providers
        doc: onnxruntime execution providers in order of preference.
        inputBinding:
          prefix: --providers
          itemSeparator: ","
      source_hrefs:
        type:
          - "null"
          - type: array
            items: string
            inputBinding:
              prefix: --source-item-href
        label: Imagery URLs
        doc: URLs of the imagery Items, each taken for the Item its path names.
        inputBinding: {}
      model_href:
        type: string?
        label: Model URL
        doc: URL the MLM Item (or its catalog) is published at.
        inputBinding:
          prefix: --model-href
    outputs:
      prediction:
        type: Directory
        label: Prediction catalog
        doc: STAC catalog of the results for this input.
        outputBinding:
          glob: prediction

  - class: CommandLineTool
    id: mlmkit-merge
    label: mlmkit merge
    doc: Merges several STAC catalogs into one self-contained catalog.
    hints:
      - class: DockerRequirement
        dockerPull: mlmkit:0.2.0
    requirements:
      - class: ResourceRequirement
        coresMin: 1
        coresMax: 1
        ramMin: 512
        ramMax: 1024
    baseCommand: [mlmkit, merge]
    arguments:
      - prefix: --output
        valueFrom: results
    inputs:
      predictions:
        type: Directory[]
        label: Prediction catalogs
        doc: The result catalogs of the scattered predict jobs.
        inputBinding:
          position: 1
    outputs:
      results:
        type: Directory
        label: Results catalog
        doc: One catalog.json linking every result Item.
        outputBinding:
          glob: results
