cwlVersion: v1.2
$namespaces:
  s: https://schema.org/

s:name: mlmkit-training
s:version: "0.2.0"
s:softwareVersion: "0.2.0"
s:description: >-
  Trains a PyTorch model on a STAC training catalog (label + ml-aoi chips), exports it to ONNX and describes it
  with a STAC MLM (Machine Learning Model extension) Item, with metrics and a confusion matrix, in a STAC catalog.
s:dateCreated: "2026-11-22"
s:license:
  class: s:CreativeWork
  s:name: Apache-2.0
  s:url: https://www.apache.org/licenses/LICENSE-2.0
s:keywords: [STAC, MLM, machine learning, training, Earth observation, ONNX, PyTorch]
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
    id: mlmkit-training
    label: MLM model training
    doc: >-
      Trains a model on a staged STAC training catalog and writes the model catalog: ONNX model, MLM Item,
      metrics and confusion matrix. The MLM Item's runtime assets point at the CWL packages given.
    inputs:
      training_data:
        type: Directory
        label: Training catalog
        doc: Staged STAC training catalog (directory with catalog.json) of image chips and labels, split with ml-aoi.
      task:
        type:
          - "null"
          - type: enum
            symbols: [scene-classification, semantic-segmentation]
        label: Task
        doc: What the model learns (default from the labels, raster labels give semantic segmentation).
      architecture:
        type:
          - "null"
          - type: enum
            symbols: [small-cnn, resnet18, unet]
        label: Architecture
        doc: Network architecture (default small-cnn for scenes, unet for segmentation).
      epochs:
        type: int?
        default: 10
        label: Epochs
        doc: Passes over the training split.
      batch_size:
        type: int?
        default: 32
        label: Batch size
        doc: Chips per optimiser step.
      learning_rate:
        type: float?
        default: 0.001
        label: Learning rate
        doc: AdamW learning rate (cosine schedule).
      seed:
        type: int?
        default: 0
        label: Seed
        doc: Seed of the weights and the batch order.
      width:
        type: int?
        label: Base width
        doc: Base channel width of the network (default the architecture's).
      model_id:
        type: string?
        label: Model id
        doc: Id of the MLM Item (default ARCHITECTURE-TASK).
      inference_cwl:
        type: string?
        label: Inference package URL
        doc: URL of the inference CWL package, recorded as the MLM Item's mlm:inference-runtime asset.
      training_cwl:
        type: string?
        label: Training package URL
        doc: URL of this training CWL package, recorded as the MLM Item's mlm:training-runtime asset.
      training_data_href:
        type: string?
        label: Training data URL
        doc: >-
          URL the training catalog is published at, for the MLM Item's derived_from links where the staged copy
          carries no self link.
      schema_dir:
        type: Directory?
        label: STAC schema mirror
        doc: >-
          Offline mirror of the STAC and MLM JSON schemas laid out <host>/<path>, for validating the model catalog
          where the schema URLs cannot be reached (default download them).
    outputs:
      model:
        type: Directory
        outputSource: train/model
        label: Model catalog
        doc: STAC catalog (catalog.json) holding the MLM Item, the ONNX model, metrics and confusion matrix.
    steps:
      train:
        label: Train
        doc: Runs mlmkit train.
        run: "#mlmkit-train"
        in:
          training_data: training_data
          task: task
          architecture: architecture
          epochs: epochs
          batch_size: batch_size
          learning_rate: learning_rate
          seed: seed
          width: width
          model_id: model_id
          inference_cwl: inference_cwl
          training_cwl: training_cwl
          training_data_href: training_data_href
          schema_dir: schema_dir
        out: [model]

  - class: CommandLineTool
    id: mlmkit-train
    label: mlmkit train
    doc: Trains on a STAC training catalog; writes ONNX + MLM Item (+ metrics, confusion matrix) as a catalog.
    hints:
      - class: DockerRequirement
        dockerPull: mlmkit:0.2.0-training
    requirements:
      - class: ResourceRequirement
        coresMin: 1
        coresMax: 4
        ramMin: 4096
        ramMax: 16384
      - class: NetworkAccess
        networkAccess: true
      - class: InlineJavascriptRequirement
      - class: EnvVarRequirement
        envDef:
          MLMKIT_SCHEMA_DIR: '$(inputs.schema_dir ? inputs.schema_dir.path : "")'
    baseCommand: [mlmkit, train]
    arguments:
      - prefix: --output
        valueFrom: model
      - --quiet
    inputs:
      training_data:
        type: Directory
        label: Training catalog
        doc: Staged STAC training catalog.
        inputBinding:
          prefix: --data
      task:
        type:
          - "null"
          - type: enum
            symbols: [scene-classification, semantic-segmentation]
        label: Task
        doc: What the model learns.
        inputBinding:
          prefix: --task
      architecture:
        type:
          - "null"
          - type: enum
            symbols: [small-cnn, resnet18, unet]
        label: Architecture
        doc: Network architecture.
        inputBinding:
          prefix: --arch
      epochs:
        type: int?
        label: Epochs
        doc: Passes over the training split.
        inputBinding:
          prefix: --epochs
      batch_size:
        type: int?
        label: Batch size
        doc: Chips per optimiser step.
        inputBinding:
          prefix: --batch-size
      learning_rate:
        type: float?
        label: Learning rate
        doc: AdamW learning rate.
        inputBinding:
          prefix: --lr
      seed:
        type: int?
        label: Seed
        doc: Seed of the weights and the batch order.
        inputBinding:
          prefix: --seed
      width:
        type: int?
        label: Base width
        doc: Base channel width of the network.
        inputBinding:
          prefix: --width
      model_id:
        type: string?
        label: Model id
        doc: Id of the MLM Item.
        inputBinding:
          prefix: --model-id
      inference_cwl:
        type: string?
        label: Inference package URL
        doc: URL of the inference CWL package.
        inputBinding:
          prefix: --inference-cwl-href
      training_cwl:
        type: string?
        label: Training package URL
        doc: URL of the training CWL package.
        inputBinding:
          prefix: --training-cwl-href
      training_data_href:
        type: string?
        label: Training data URL
        doc: URL the training catalog is published at.
        inputBinding:
          prefix: --training-data-href
      schema_dir:
        type: Directory?
        label: STAC schema mirror
        doc: Offline mirror of the STAC and MLM JSON schemas; the model catalog is validated against them.
    outputs:
      model:
        type: Directory
        label: Model catalog
        doc: The model catalog written by mlmkit train.
        outputBinding:
          glob: model
